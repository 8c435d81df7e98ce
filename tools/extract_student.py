"""Write the student of a DistillSegmentor checkpoint as a plain checkpoint.

    python tools/extract_student.py DISTILL_CKPT OUT.pth

The result holds only the student's weights (no teacher, no adapters, no
optimizer) and the dataset meta, and loads into the student's own config,
e.g. ``python tools/test.py configs/segformer_b0_cardamage.py OUT.pth``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402

from cardamage_mmseg.models.segmentors.distill import \
    student_state_dict  # noqa: E402
from cardamage_mmseg.cli.main import run  # noqa: E402
from cardamage_mmseg.core.files import atomic_write  # noqa: E402
from cardamage_mmseg.utils.checkpoint import load_checkpoint_file  # noqa


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('checkpoint')
    p.add_argument('out')
    args = p.parse_args(argv)
    ckpt = load_checkpoint_file(args.checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    student = student_state_dict(state)
    if not student:
        print(f'error: {args.checkpoint} has no student.* weights (is it a '
              f'DistillSegmentor checkpoint?)', file=sys.stderr)
        return 2
    meta = {k: v for k, v in ckpt.get('meta', {}).items()
            if k in ('dataset_meta', 'mmengine_version', 'iter', 'epoch',
                     'seed', 'experiment_name')}
    meta['extracted_from'] = osp.abspath(args.checkpoint)
    atomic_write(args.out, lambda path: torch.save(
        dict(meta=meta, state_dict=student), path))
    dropped = len(state) - len(student)
    print(f'wrote {args.out}: {len(student)} student tensors '
          f'({dropped} training-only tensors dropped)')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
