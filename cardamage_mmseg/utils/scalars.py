"""Read what mmengine's LocalVisBackend logged (``vis_data/scalars.json``)."""
import glob
import json
import os.path as osp


def last_val_metrics(work_dir: str) -> dict:
    """The last logged row with ``mIoU`` of the newest run in ``work_dir``.
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise RuntimeError(f'no scalars.json under {work_dir}')
    metrics = {}
    with open(files[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 'mIoU' in row:
                metrics = row
    return metrics
