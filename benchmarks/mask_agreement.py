"""Masks of tools/infer.py's path against the old serial path, per photo.

    python benchmarks/mask_agreement.py CHECKPOINT
        [--config configs/segformer_b0_cardamage_demo.py]
        [--sizes native 4032x3024] [--limit 0]

Old path (tools/infer.py before issue 16): the whole photo decoded
(``read_image_rgb``), every class's log-probability upsampled bilinearly
to the photo's size, softmax, argmax (``finish(full_probs=True)``). New
path (today's default): the photo decoded only as large as the model needs
(JPEG DCT scaling, ``prepare_file``), the damage-minus-background logit
upsampled bilinearly inside the windows around the model's damage
(``finish``). Per photo, damage IoU of the two masks at the photo's size,
|A & B| / |A | B| (``iou``), and of the old mask with the new upsampling of
the old path's own logits (``iou_upsampling``: the upsampling alone,
without the reduced decode), over the photos whose old mask has damage
on >= 0.1% of its pixels (the issue's rule); minimum, mean, and the photo
with the minimum. Next to it, each path's damage IoU against the demo's
labels painted at the photo's size (all photos; the 8 val photos alone,
which the demo checkpoint did not train on). Photos: the bundled demo
photos (train and val), at their own size ("native") and scaled to each
``WxH`` of ``--sizes`` (JPEG quality 90, as the other benchmarks).
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.report import save_report  # noqa: E402

DEMO = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')
MIN_SHARE = 1e-3


def demo_photos(limit: int = 0) -> list:
    """The demo's labelled photos, train then val, in name order."""
    from cardamage_mmseg.apis.export import photos_in
    paths = [p for split in ('train', 'val')
             for p in photos_in(osp.join(DEMO, split))]
    return paths[:limit] if limit else paths


def demo_truth() -> dict:
    """Photo name -> (polygons, (w, h) of the photo they refer to), from
    the demo's VIA files (background/damage)."""
    from cardamage_mmseg.datasets.converters.via import load_via_entries
    truth = {}
    for split in ('train', 'val'):
        folder = osp.join(DEMO, split)
        entries, _ = load_via_entries(
            osp.join(folder, 'via_region_data.json'), folder, split=split)
        for e in entries:
            with Image.open(e.image_path) as img:
                truth[osp.basename(e.image_path)] = (e.polygons, img.size)
    return truth


def truth_mask(truth, height: int, width: int) -> np.ndarray:
    """The labels painted at the photo's (scaled) size, as the converter
    paints them (:func:`rasterize`, exact scaled vertices)."""
    from cardamage_mmseg.datasets.converters.common import rasterize
    polygons, (w, h) = truth
    return rasterize(polygons, (width, height), (width / w, height / h))


def counts(mask: np.ndarray, label: np.ndarray) -> list:
    """[|mask & label|, |mask | label|] of the damage pixels."""
    a, b = mask != 0, label != 0
    return [int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))]


def damage_iou(old: np.ndarray, new: np.ndarray) -> float:
    """|old & new| / |old | new| of the damage pixels; 1 if both are
    empty."""
    inter, union = counts(old, new)
    return 1.0 if union == 0 else inter / union


def compare(segmenter, path: str, source: str, truth=None) -> dict:
    """The old and the new mask of ``path`` (a copy of the demo photo
    ``source``, or the photo itself), compared (and each with the labels,
    if ``truth``)."""
    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.core.result import finish
    args = (segmenter.combine, segmenter.classes,
            segmenter.min_region_fraction)
    old_in = segmenter.prepare(read_image_rgb(path), path)
    [old_lp] = segmenter.forward([old_in])
    old = finish(old_lp, old_in.size, path, *args, full_probs=True)
    # the new upsampling of the old path's logits: what the windows and
    # the sign change alone, without the reduced decode
    windowed = finish(old_lp, old_in.size, path, *args)
    new_in = segmenter.prepare_file(path, None)
    [new_lp] = segmenter.forward([new_in])
    new = finish(new_lp, new_in.size, path, *args)
    share = float(np.count_nonzero(old.mask)) / old.mask.size
    labels = {}
    if truth is not None:
        label = truth_mask(truth, *old_in.size)
        labels = dict(truth_old=counts(old.mask, label),
                      truth_new=counts(new.mask, label))
    return dict(**labels, photo=osp.basename(source),
                split=osp.basename(osp.dirname(source)),
                size=list(old_in.size),
                needed=list(segmenter.needed_size(
                    old_in.size[1], old_in.size[0], None)),
                damage_share=round(share, 5),
                iou=round(damage_iou(old.mask, new.mask), 5),
                iou_upsampling=round(damage_iou(old.mask, windowed.mask), 5),
                equal_pixels=round(float(np.mean(old.mask == new.mask)), 6))


def summarise(rows: list) -> dict:
    """Minimum and mean IoU over the photos with >= 0.1% damage."""
    counted = [r for r in rows if r['damage_share'] >= MIN_SHARE]
    if not counted:
        return dict(photos=len(rows), counted=0)
    worst = min(counted, key=lambda r: r['iou'])
    return dict(photos=len(rows), counted=len(counted),
                iou_min=worst['iou'], iou_min_photo=worst['photo'],
                iou_mean=round(statistics.mean(r['iou'] for r in counted),
                               5),
                upsampling_iou_min=min(r['iou_upsampling'] for r in counted),
                upsampling_iou_mean=round(statistics.mean(
                    r['iou_upsampling'] for r in counted), 5),
                equal_pixels_min=min(r['equal_pixels'] for r in rows),
                **truth_iou(rows))


def truth_iou(rows: list) -> dict:
    """Damage IoU of each path against the labels over all photos, and
    over the val photos only (sum of intersections / sum of unions, as
    mmseg's IoU)."""
    out = {}
    for key in ('all', 'val'):
        mine = [r for r in rows if 'truth_old' in r and (
            key == 'all' or r['split'] == key)]
        for path in ('old', 'new'):
            inter = sum(r[f'truth_{path}'][0] for r in mine)
            union = sum(r[f'truth_{path}'][1] for r in mine)
            if union:
                out[f'truth_iou_{path}_{key}'] = round(inter / union, 4)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('checkpoint')
    p.add_argument('--config',
                   default='configs/segformer_b0_cardamage_demo.py')
    p.add_argument('--sizes', nargs='+', default=['native', '4032x3024'])
    p.add_argument('--limit', type=int, default=0,
                   help='only the first N demo photos (0: all)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        p.error(f'checkpoint not found: {args.checkpoint} (make demo '
                'writes work_dirs/segformer_b0_cardamage_demo/iter_300.pth)')
    from cardamage_mmseg.apis import DamageSegmenter
    seg = DamageSegmenter(args.config, args.checkpoint, args.device)
    sources = demo_photos(args.limit)
    truth = demo_truth()
    report = dict(config=args.config, checkpoint=args.checkpoint,
                  min_damage_share=MIN_SHARE, sizes={})
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            paths = sources
            if size != 'native':
                wh = tuple(int(v) for v in size.split('x'))
                paths = []
                for i, src in enumerate(sources):
                    path = osp.join(tmp, f'{size}_{i:03d}.jpg')
                    Image.open(src).convert('RGB').resize(
                        wh, Image.Resampling.BILINEAR).save(path, quality=90)
                    paths.append(path)
            rows = []
            for i, (path, src) in enumerate(zip(paths, sources)):
                rows.append(compare(seg, path, src,
                                    truth.get(osp.basename(src))))
                print(f'[{size} {i + 1}/{len(paths)}]', rows[-1], flush=True)
            report['sizes'][size] = dict(summary=summarise(rows), rows=rows)
            print(size, report['sizes'][size]['summary'], flush=True)
    save_report(report, args.out_dir, 'mask_agreement', args.device)
    return 0


if __name__ == '__main__':
    sys.exit(main())
