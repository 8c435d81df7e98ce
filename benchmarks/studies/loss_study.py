"""Compare loss combinations on the same model, data, seed and budget.

    python benchmarks/studies/loss_study.py \
        [--config configs/segformer_b0_cardamage_demo.py] [--iters 300] \
        [--presets ce ce-dice dice-focal ce-lovasz ce-dice-iou] \
        [--work-dir work_dirs/loss_study] [--cfg-options ...]

Each preset trains through tools/train.py (a fresh process, seed from the
config; its progress lines shown, its whole output in
WORK_DIR/PRESET/train_output.log), validates once at the end, and the
script prints a markdown table of val mIoU and damage IoU (also written to
WORK_DIR/results.json).
"""
import argparse
import json
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from cardamage_mmseg.cli.config import loss_preset_names  # noqa: E402
from benchmarks.studies.runs import (last_val_metrics,  # noqa: E402
                                     train_short)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config',
                   default='configs/segformer_b0_cardamage_demo.py')
    p.add_argument('--iters', type=int, default=300)
    p.add_argument('--presets', nargs='+',
                   default=['ce', 'ce-dice', 'dice-focal', 'ce-lovasz',
                            'ce-dice-iou'],
                   choices=loss_preset_names())
    p.add_argument('--work-dir', default='work_dirs/loss_study')
    p.add_argument('--cfg-options', nargs='*', default=[])
    args = p.parse_args(argv)
    results = []
    for i, preset in enumerate(args.presets, 1):
        work = osp.join(args.work_dir, preset)
        print(f'[{i}/{len(args.presets)}] {preset}: training {args.iters} '
              f'iterations -> {work}', flush=True)
        start = time.time()
        try:
            train_short(args.config, work, args.iters,
                        tool_args=['--loss', preset],
                        cfg_options=args.cfg_options)
        except RuntimeError as err:
            print(err, file=sys.stderr)
            return 1
        m = last_val_metrics(work)
        results.append(dict(preset=preset, mIoU=m['mIoU'],
                            damage_IoU=m.get('IoU.damage'),
                            background_IoU=m.get('IoU.background'),
                            minutes=round((time.time() - start) / 60, 1)))
        print(f'    mIoU {m["mIoU"]:.2f}, damage IoU '
              f'{m.get("IoU.damage")}', flush=True)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(config=args.config, iters=args.iters,
                       results=results), f, indent=1)
    print('\n| loss | val mIoU | damage IoU | background IoU |')
    print('|---|---|---|---|')
    for r in results:
        print(f"| {r['preset']} | {r['mIoU']:.2f} | {r['damage_IoU']:.2f} | "
              f"{r['background_IoU']:.2f} |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
