"""Convert VIA (VGG Image Annotator) polygons to mmseg's layout.

Example (the bundled demo, train split)::

    python tools/dataset_converters/via_to_mmseg.py \
        data/demo/car-damage-detector/dataset/train/via_region_data.json \
        --img-dir data/demo/car-damage-detector/dataset/train \
        --out data/car_damage_demo --split train

Writes ``OUT/img_dir/<split>/*.jpg`` and ``OUT/ann_dir/<split>/*.png`` (class
ids), ``OUT/conversion_report_<split>.json``; re-runs skip finished pairs.
A photo already converted keeps its split: a re-run with another seed or
ratio, or after the export grew, splits only the new photos, and
``--split`` into another split than a photo's stops (exit 2).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cardamage_mmseg.datasets.converters import (  # noqa: E402
    ConversionError, assign_splits, kept_split_note, load_via_entries,
    parse_class_map, printable, run_conversion)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('via_json', help='VIA 1.x/2.x project or export JSON')
    p.add_argument('--img-dir', help='folder of the images (default: the '
                   'JSON file\'s folder)')
    p.add_argument('--out', default='data/car_damage',
                   help='output data root (default: data/car_damage)')
    group = p.add_mutually_exclusive_group()
    group.add_argument('--split', help='put every image in this split '
                       '(default: train)')
    group.add_argument('--split-ratio', help='random split train,val,test '
                       'e.g. 7,1.5,1.5 (deterministic with --seed)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--class-key', default='name',
                   help='region_attributes key holding the class name')
    p.add_argument('--class-map', default='damage=1',
                   help='name=id,... ; id "ignore" paints 255, "skip" drops '
                   'the region (default: damage=1)')
    p.add_argument('--size', type=int, default=0,
                   help='resize to SIZExSIZE (0 keeps the original size)')
    p.add_argument('--nproc', type=int, default=1, help='worker processes')
    p.add_argument('--overwrite', action='store_true',
                   help='rewrite pairs that already exist')
    return p.parse_args(argv)


def check_some_region_matched(entries, args) -> None:
    """Regions everywhere but not one polygon kept: the class key or map
    does not fit this file (it would give all-background masks)."""
    if any(e.polygons for e in entries):
        return
    reasons = [p for e in entries for p in e.problems
               if 'not in the class map' in p or 'region_attributes' in p]
    if reasons:
        raise ConversionError(
            f'{args.via_json}: none of the regions matched --class-key '
            f'{args.class_key!r} / --class-map {args.class_map!r} '
            f'({len(reasons)} skipped; first: {reasons[0]}). Every mask '
            f'would be background: set --class-key to the region attribute '
            f'that names the class and --class-map to its values (e.g. '
            f'--class-map scratch=1,dent=1).')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        class_map = parse_class_map(args.class_map)
        img_dir = args.img_dir or osp.dirname(osp.abspath(args.via_json))
        entries, skipped = load_via_entries(
            args.via_json, img_dir, args.class_key, class_map,
            split=args.split or 'train')
        if not entries:
            raise ConversionError(
                f'{args.via_json}: no usable image records '
                f'({len(skipped)} skipped); first: '
                f'{skipped[0] if skipped else "none"}')
        check_some_region_matched(entries, args)
        if args.split_ratio:
            ratios = [float(v) for v in args.split_ratio.split(',')]
            kept, _ = assign_splits(entries, args.out, ratios=ratios,
                                    seed=args.seed)
        else:
            kept, _ = assign_splits(entries, args.out,
                                    split=args.split or 'train')
        summary = run_conversion(entries, args.out, args.size, args.nproc,
                                 args.overwrite, skipped,
                                 desc=f'VIA -> {args.out}')
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
