"""Check a converted data set and report every problem at once.

    python tools/dataset_converters/check_dataset.py data/car_damage \
        [--splits train val test] [--num-classes 2]

Exit code 0 when clean, 1 when problems were found, 2 on bad arguments.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cardamage_mmseg.datasets.checker import (  # noqa: E402
    check_dataset, format_reports)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('data_root')
    p.add_argument('--splits', nargs='+', default=['train', 'val', 'test'])
    p.add_argument('--num-classes', type=int, default=2)
    p.add_argument('--img-suffix', default='.jpg')
    p.add_argument('--seg-map-suffix', default='.png')
    p.add_argument('--json', help='also write the report as JSON here')
    args = p.parse_args(argv)
    if not osp.isdir(args.data_root):
        print(f'error: data root {args.data_root} does not exist',
              file=sys.stderr)
        return 2
    reports = check_dataset(args.data_root, args.splits, args.num_classes,
                            progress=True, img_suffix=args.img_suffix,
                            seg_map_suffix=args.seg_map_suffix)
    print(format_reports(reports))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump([r.__dict__ for r in reports], f, indent=1)
    return 1 if any(r.problems for r in reports) else 0


if __name__ == '__main__':
    sys.exit(main())
