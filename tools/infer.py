"""Segment damage on photos: masks, overlays with a legend, and a report.

    python tools/infer.py CONFIG [CHECKPOINT] INPUT [--out DIR] \
        [--device cpu|cuda:0] [--batch-size N] [--tta] [--opacity 0.5] \
        [--overwrite] [--min-region 0.0005] [--amp [bf16|fp16]] [--compile] \
        [--channels-last]

INPUT: an image, a folder (searched recursively for jpg/jpeg/png/bmp/webp
in any case) or a text file with one image path per line (relative paths
are relative to the text file). CONFIG may be an ensemble config (then no
CHECKPOINT). For each image, under DIR (default work_dirs/infer):

    masks/<name>.png       class ids (palette PNG), original resolution
    overlays/<name>.jpg    colour overlay with a legend
    reports/<name>.json    the image's report line
and, for the whole run, report.csv and report.json (file, width, height,
damage share per class, number of regions and their boxes, confidence).
Re-running skips images whose outputs exist and were made from the same
file (unless --overwrite); an unreadable image is reported and skipped.
Inputs that would share an output name (a.jpg and a.png) get their
extension appended (masks/a_jpg.png, masks/a_png.png).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from PIL import Image  # noqa: E402

from cardamage_mmseg.utils.io import atomic_write  # noqa: E402
from cardamage_mmseg.utils.speed import add_speed_args  # noqa: E402

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('paths', nargs='+', metavar='[CHECKPOINT] INPUT')
    p.add_argument('--out', default='work_dirs/infer')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--tta', action='store_true',
                   help='average with the horizontally flipped image')
    p.add_argument('--opacity', type=float, default=0.5)
    p.add_argument('--min-region', type=float, default=5e-4,
                   help='smallest region in the report, as a fraction of '
                   'the image area (default 0.0005)')
    p.add_argument('--overwrite', action='store_true')
    add_speed_args(p)
    args = p.parse_args(argv)
    if len(args.paths) == 1:
        args.checkpoint, args.input = None, args.paths[0]
    elif len(args.paths) == 2:
        args.checkpoint, args.input = args.paths
    else:
        p.error('expected [CHECKPOINT] INPUT')
    if args.batch_size < 1:
        p.error('--batch-size must be >= 1')
    return args


def unique_names(items):
    """Make output names unique (case-insensitively, for such file
    systems): names shared by several inputs (``a.jpg`` and ``a.png``, or
    two ``x.jpg`` of a list) get the input's extension, then a number."""
    from collections import Counter
    counts = Counter(name.lower() for _, name in items)
    out, used = [], set()
    for path, name in items:
        if counts[name.lower()] > 1:
            ext = osp.splitext(path)[1].lstrip('.').lower()
            name = f'{name}_{ext}' if ext else name
        base, k = name, 2
        while name.lower() in used:
            name, k = f'{base}_{k}', k + 1
        used.add(name.lower())
        out.append((path, name))
    return out


def collect_inputs(path: str):
    """(path, output name) pairs; output names keep sub-folders and are
    unique (:func:`unique_names`)."""
    return unique_names(_find_inputs(path))


def _find_inputs(path: str):
    if not osp.exists(path):
        raise SystemExit(f'error: input {path} does not exist')
    if osp.isdir(path):
        found = []
        for root, _, names in os.walk(path):
            for name in names:
                if name.lower().endswith(IMAGE_SUFFIXES):
                    full = osp.join(root, name)
                    found.append((full, osp.splitext(osp.relpath(
                        full, path))[0]))
        found.sort()
        if not found:
            raise SystemExit(f'error: no images ({", ".join(IMAGE_SUFFIXES)}'
                             f') under {path}')
        return found
    if path.lower().endswith('.txt'):
        base = osp.dirname(osp.abspath(path))
        with open(path, encoding='utf-8') as f:
            lines = [ln.strip() for ln in f if ln.strip()
                     and not ln.startswith('#')]
        if not lines:
            raise SystemExit(f'error: {path} lists no images')
        return [(full, osp.splitext(osp.basename(full))[0]) for full in (
            line if osp.isabs(line) else osp.join(base, line)
            for line in lines)]
    return [(path, osp.splitext(osp.basename(path))[0])]


def output_paths(out: str, name: str):
    return (osp.join(out, 'masks', name + '.png'),
            osp.join(out, 'overlays', name + '.jpg'),
            osp.join(out, 'reports', name + '.json'))


def finished_report(out: str, name: str, path: str):
    """The report of ``path`` if its outputs under ``name`` are all there
    and were made from that file, else None (also for a report that
    cannot be read: the image is redone)."""
    paths = output_paths(out, name)
    if not all(osp.isfile(p) for p in paths):
        return None
    try:
        with open(paths[2]) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or \
            report.pop('source', None) != osp.abspath(path):
        return None
    return report


def write_outputs(segmenter, result, rgb, name, out, opacity):
    from cardamage_mmseg.datasets.converters.common import save_mask
    from cardamage_mmseg.visualization import add_legend, overlay
    mask_path, overlay_path, report_path = output_paths(out, name)
    save_mask(result.mask, mask_path, segmenter.palette)
    pct = result.report['damage_share'] * 100
    drawn = add_legend(
        overlay(rgb, result.mask, segmenter.palette, opacity),
        segmenter.classes, segmenter.palette,
        f'damage {pct:.1f}%, {result.report["num_regions"]} region(s)')
    atomic_write(overlay_path, lambda p: Image.fromarray(drawn).save(
        p, format='JPEG', quality=90))
    # the source file is recorded: a re-run only reuses outputs of the
    # same file (a changed list could map another image to this name)
    atomic_write(report_path, lambda p: open(p, 'w').write(json.dumps(
        dict(result.report, source=osp.abspath(result.source)))))


def write_summary(out, rows, classes):
    share_cols = [f'share.{c}' for c in classes[1:]]
    cols = ['file', 'status', 'width', 'height', 'damage_share',
            *share_cols, 'num_regions', 'mean_confidence',
            'damage_confidence', 'regions', 'error']
    atomic_write(osp.join(out, 'report.json'), lambda p: open(
        p, 'w').write(json.dumps(rows, indent=1)))

    def write_csv(p):
        with open(p, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=cols,
                                    extrasaction='ignore')
            writer.writeheader()
            for row in rows:
                row = dict(row)
                row['regions'] = json.dumps(row.get('regions', []))
                writer.writerow(row)

    atomic_write(osp.join(out, 'report.csv'), write_csv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from cardamage_mmseg.apis import (DamageSegmenter, ImageReadError,
                                      read_image_rgb)
    items = collect_inputs(args.input)
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint} not found')
    try:
        segmenter = DamageSegmenter(
            args.config, args.checkpoint, args.device, args.tta,
            args.min_region, amp=args.amp, compile=args.compile,
            channels_last=args.channels_last)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    rows, errors, skipped, done = [], [], 0, 0
    todo = []
    for path, name in items:
        report = None if args.overwrite else finished_report(
            args.out, name, path)
        if report is not None:
            rows.append(dict(file=path, status='exists', **report))
            skipped += 1
        else:
            todo.append((path, name))
    model_time = 0.0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc='infer', unit='img')
    for i in range(0, len(todo), args.batch_size):
        chunk, arrays = [], []
        for path, name in todo[i:i + args.batch_size]:
            try:
                arrays.append(read_image_rgb(path))
                chunk.append((path, name))
            except ImageReadError as err:
                errors.append((path, str(err)))
                rows.append(dict(file=path, status='error', error=str(err)))
                bar.update(1)
        if not chunk:
            continue
        t0 = time.perf_counter()
        results = segmenter.predict_arrays(arrays, [p for p, _ in chunk])
        model_time += time.perf_counter() - t0
        for (path, name), rgb, result in zip(chunk, arrays, results):
            write_outputs(segmenter, result, rgb, name, args.out,
                          args.opacity)
            rows.append(dict(file=path, status='ok', **result.report))
            done += 1
        bar.update(len(chunk))
    bar.close()
    total = time.perf_counter() - start
    order = {p: k for k, (p, _) in enumerate(items)}
    rows.sort(key=lambda r: order.get(r['file'], 0))
    write_summary(args.out, rows, segmenter.classes)
    rate = done / total if total > 0 and done else 0.0
    print(f'\n{done} image(s) segmented ({rate:.2f} img/s; model '
          f'{model_time:.1f}s of {total:.1f}s), {skipped} already done, '
          f'{len(errors)} unreadable')
    for path, why in errors:
        print(f'  skipped {path}: {why}')
    print(f'outputs: {args.out}/masks, {args.out}/overlays, '
          f'{args.out}/report.csv, {args.out}/report.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
