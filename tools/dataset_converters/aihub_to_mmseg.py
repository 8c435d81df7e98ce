"""Convert the AI Hub "Vehicle Damage Image" data (dataSetSn=581) to mmseg's
layout, with a deterministic train/val/test split that never moves a photo
already converted (a re-run or a grown export splits only the new ones).

Example::

    python tools/dataset_converters/aihub_to_mmseg.py \
        --img-root "/data/aihub/1.원천데이터" \
        --label-root "/data/aihub/2.라벨링데이터" \
        --out data/car_damage --mode binary --size 512 --nproc 8

Modes: ``binary`` (any damage -> 1) or ``multiclass`` (Scratched 1,
Separated 2, Crushed 3, Breakage 4; where polygons overlap the more severe
class wins: Breakage > Crushed > Separated > Scratched).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cardamage_mmseg.datasets.converters import (  # noqa: E402
    ConversionError, assign_splits, kept_split_note, load_aihub_entries,
    printable, run_conversion)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--img-root', required=True,
                   help='root of the image tree (searched recursively)')
    p.add_argument('--label-root', required=True,
                   help='root of the label JSON tree (searched recursively)')
    p.add_argument('--out', default='data/car_damage')
    p.add_argument('--mode', choices=['binary', 'multiclass'],
                   default='binary')
    p.add_argument('--size', type=int, default=512,
                   help='resize to SIZExSIZE as the study did; 0 keeps the '
                   'original size (default: 512)')
    p.add_argument('--split-ratio', default='7,1.5,1.5',
                   help='train,val,test ratios (default: 7,1.5,1.5)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--nproc', type=int, default=1)
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        entries, skipped = load_aihub_entries(args.img_root, args.label_root,
                                              args.mode)
        if not entries:
            raise ConversionError(
                f'no label matched an image ({len(skipped)} skipped); '
                f'first: {skipped[0] if skipped else "none"}')
        ratios = [float(v) for v in args.split_ratio.split(',')]
        kept, _ = assign_splits(entries, args.out, ratios=ratios,
                                seed=args.seed)
        summary = run_conversion(entries, args.out, args.size, args.nproc,
                                 args.overwrite, skipped,
                                 desc=f'AI Hub -> {args.out}')
    except (ConversionError, ValueError) as err:
        print(f'error: {printable(str(err))}', file=sys.stderr)
        return 2
    print(summary.report())
    if kept:
        print(kept_split_note(kept))
    print(f'report: {summary.report_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
