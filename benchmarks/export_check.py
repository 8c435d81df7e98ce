"""Which baselines export, and how exactly: every config of the model zoo
with random weights through tools/export.py's path (export, then the
runtime against PyTorch on photos).

    python benchmarks/export_check.py [--models segformer_b0 ...] [--photos 2]

Per model: exported or the reason it is refused, export seconds, file
size, the largest log-probability difference and the share of equal mask
pixels against PyTorch on ``--photos`` bundled val photos (all 1024 x
1024) and a crop of the first of another shape.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.report import save_report  # noqa: E402

SAMPLE_VAL = osp.join(REPO, 'data', 'demo', 'car-damage-detector',
                      'dataset', 'val')


def check(name: str, folder: str, photos) -> dict:
    from mmengine.registry import init_default_scope
    from mmengine.runner import save_checkpoint

    import cardamage_mmseg.register  # noqa: F401

    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.apis.export import (compare, export_onnx,
                                             other_size_photo)
    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.runtime import OnnxSegmenter
    from cardamage_mmseg.zoo import BASELINES, build_baseline, offline_options
    config = osp.join(REPO, BASELINES[name].config)
    row = dict(model=name, config=BASELINES[name].config)
    init_default_scope('mmseg')
    try:
        model = build_baseline(name, REPO)
        ckpt = osp.join(folder, name + '.pth')
        save_checkpoint(dict(state_dict=model.state_dict()), ckpt)
        seg = DamageSegmenter(config, ckpt, cfg_options=dict(
            offline_options(name)))
        path = osp.join(folder, name + '.onnx')
        t0 = time.perf_counter()
        export_onnx(seg, config, ckpt, path, read_image_rgb(photos[0]))
        row['export_s'] = round(time.perf_counter() - t0, 1)
        row['file_mb'] = round(osp.getsize(path) / 1e6, 1)
        # and a crop of another shape, as tools/export.py checks
        agreement = compare(seg, OnnxSegmenter(path), list(photos) + [
            other_size_photo(photos[0], folder)])
        row.update(status='exported',
                   max_abs_diff=float(f'{agreement.max_abs_diff:.3g}'),
                   mask_agreement=round(agreement.mask_agreement, 6))
    except ValueError as err:  # ConfigError: refused with the reason
        row.update(status='refused', reason=str(err)[:300])
    except Exception as err:
        row.update(status='failed', reason=f'{type(err).__name__}: '
                   f'{str(err)[:300]}')
    print(row, flush=True)
    return row


def main(argv=None) -> int:
    from cardamage_mmseg.zoo import BASELINES
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=list(BASELINES))
    p.add_argument('--photos', type=int, default=2)
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    photos = [osp.join(SAMPLE_VAL, n) for n in
              sorted(os.listdir(SAMPLE_VAL)) if n.endswith('.jpg')]
    photos = photos[:args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [check(name, tmp, photos) for name in args.models]
    save_report(dict(rows=rows), args.out_dir, 'export_check', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
