"""Segment damage on photos: masks, overlays with a legend, and a report.

    python tools/infer.py CONFIG [CHECKPOINT] INPUT [--out DIR] \
        [--device cpu|cuda:0] [--batch-size N] [--tta] [--opacity 0.5] \
        [--overwrite] [--min-region 0.0005] [--amp [bf16|fp16]] [--compile] \
        [--channels-last] [--cfg-options key=value ...] \
        [--partial-checkpoint] [--max-pixels 100000000] [--overlay-size 2048]

INPUT: an image, a folder (searched recursively for jpg/jpeg/png/bmp/webp
in any case) or a text file with one image path per line (relative paths
are relative to the text file). CONFIG may be an ensemble config (then no
CHECKPOINT; set its members' checkpoints with e.g. --cfg-options
model.members.0.checkpoint=PATH). The device defaults to CUDA where there
is one, as in mmseg's tools. For each image, under DIR (default
work_dirs/infer):

    masks/<name>.png       class ids (palette PNG), original resolution
    overlays/<name>.jpg    colour overlay with a legend (longest side at
                           most --overlay-size; 0: original resolution)
    reports/<name>.json    the image's report line
and, for the whole run, report.csv and report.json (file, status, width,
height, damage share per class, number of regions and their boxes,
confidence; an error message for a photo that failed).

Guarantees: a photo that cannot be read, is above --max-pixels (default
100 MP) or fails in the model is reported and skipped, the others go on,
and the report is written however the run ends (a full disk stops the run
with a message). Re-running reuses a photo's outputs only if the photo file
(path, size, modification time) and the model (config, checkpoints,
--tta, --min-region) are unchanged (--overwrite: never). --out may not lie
inside the input folder. Inputs that would share an output name (a.jpg and
a.png) get their extension appended (masks/a_jpg.png, masks/a_png.png).
"""
import argparse
import os.path as osp
import sys
import time

import torch
from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.cli.speed import add_speed_args  # noqa: E402
from cardamage_mmseg.core import (check_output_folder,  # noqa: E402
                                  collect_inputs, finished_report,
                                  write_outputs, write_summary)
from cardamage_mmseg.core.image import MAX_PIXELS  # noqa: E402
from cardamage_mmseg.core.outputs import OVERLAY_MAX_SIDE  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('paths', nargs='+', metavar='[CHECKPOINT] INPUT')
    p.add_argument('--out', default='work_dirs/infer')
    p.add_argument('--device', help='cpu, cuda, cuda:1, ... (default: cuda '
                   'if available, else cpu)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--tta', action='store_true',
                   help='average with the horizontally flipped image')
    p.add_argument('--opacity', type=float, default=0.5)
    p.add_argument('--min-region', type=float, default=5e-4,
                   help='smallest region in the report, as a fraction of '
                   'the image area (default 0.0005)')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--max-pixels', type=int, default=MAX_PIXELS,
                   help='refuse photos with more pixels (default 100 MP; '
                   '0: no limit)')
    p.add_argument('--overlay-size', type=int, default=OVERLAY_MAX_SIDE,
                   help='longest side of the overlays (default 2048; 0: '
                   'the photo\'s size)')
    add_speed_args(p)
    p.add_argument('--partial-checkpoint', action='store_true',
                   help='load a checkpoint that does not fit the model '
                   '(what does not fit stays random): for debugging; by '
                   'default such a checkpoint stops the run')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value (e.g. '
                   'model.members.0.checkpoint=PATH for an ensemble)')
    args = p.parse_args(argv)
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if len(args.paths) == 1:
        args.checkpoint, args.input = None, args.paths[0]
    elif len(args.paths) == 2:
        args.checkpoint, args.input = args.paths
    else:
        p.error('expected [CHECKPOINT] INPUT')
    if args.batch_size < 1:
        p.error('--batch-size must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from cardamage_mmseg.apis import DamageSegmenter, read_image_rgb
    items = collect_inputs(args.input)
    check_output_folder(args.out, args.input, items)
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint {args.checkpoint} not found')
    segmenter = DamageSegmenter(
        args.config, args.checkpoint, args.device, args.tta,
        args.min_region, cfg_options=args.cfg_options, amp=args.amp,
        compile=args.compile, channels_last=args.channels_last,
        strict=not args.partial_checkpoint, max_pixels=args.max_pixels)
    rows, errors, skipped, done = [], [], 0, 0
    todo = []
    for path, name in items:
        report = None if args.overwrite else finished_report(
            args.out, name, path, segmenter.identity)
        if report is not None:
            rows.append(dict(file=path, status='exists', **report))
            skipped += 1
        else:
            todo.append((path, name))

    def failed(path: str, why: str) -> None:
        errors.append((path, why))
        rows.append(dict(file=path, status='error', error=why))

    model_time = 0.0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc='infer', unit='img')
    stopped, code = None, 1
    try:
        for i in range(0, len(todo), args.batch_size):
            chunk, arrays = [], []
            for path, name in todo[i:i + args.batch_size]:
                try:
                    arrays.append(read_image_rgb(path, args.max_pixels))
                    chunk.append((path, name))
                except Exception as err:  # unreadable, too large, ...
                    failed(path, str(err))
                    bar.update(1)
            t0 = time.perf_counter()
            results = predict_each(segmenter, arrays, chunk, failed)
            model_time += time.perf_counter() - t0
            for (path, name), rgb, result in zip(chunk, arrays, results):
                if result is None:
                    continue
                write_outputs(args.out, name, path, rgb, result.mask,
                              result.report, segmenter.classes,
                              segmenter.palette, args.opacity,
                              segmenter.identity, args.overlay_size)
                rows.append(dict(file=path, status='ok', **result.report))
                done += 1
            bar.update(len(chunk))
    except OSError as err:  # a full disk, a folder that went away
        stopped = f'stopped: cannot write the outputs: {err}'
    except KeyboardInterrupt:
        stopped, code = 'stopped by the user (Ctrl-C)', 130
    finally:
        bar.close()
        order = {p: k for k, (p, _) in enumerate(items)}
        rows.sort(key=lambda r: order.get(r['file'], 0))
        try:
            write_summary(args.out, rows, segmenter.classes)
        except OSError as err:
            stopped = (stopped or 'stopped') + (
                f'; the report could not be written either: {err}')
    total = time.perf_counter() - start
    rate = done / total if total > 0 and done else 0.0
    print(f'\n{done} image(s) segmented ({rate:.2f} img/s; model '
          f'{model_time:.1f}s of {total:.1f}s), {skipped} already done, '
          f'{len(errors)} failed')
    for path, why in errors:
        print(f'  skipped {path}: {why}')
    print(f'outputs: {args.out}/masks, {args.out}/overlays, '
          f'{args.out}/report.csv, {args.out}/report.json')
    if stopped:
        print(f'error: {stopped}', file=sys.stderr)
        return code
    return 0


def predict_each(segmenter, arrays, chunk, failed) -> list:
    """The batch's results; if the batch fails, each photo alone, so only
    the photo that fails is lost (``failed(path, why)``, result None)."""
    if not arrays:
        return []
    try:
        return segmenter.predict_arrays(arrays, [p for p, _ in chunk])
    except Exception as err:  # the model failed: out of memory, a bug
        if len(arrays) == 1:
            failed(chunk[0][0], f'{type(err).__name__}: {err}')
            return [None]
    return [predict_each(segmenter, [a], [c], failed)[0]
            for a, c in zip(arrays, chunk)]


if __name__ == '__main__':
    sys.exit(run(main))
