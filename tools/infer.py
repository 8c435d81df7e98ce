"""Segment damage on photos: masks, overlays with a legend, and a report.

    python tools/infer.py CONFIG [CHECKPOINT] INPUT [--out DIR] \
        [--device cpu|cuda:0] [--batch-size N] [--tta] [--opacity 0.5] \
        [--overwrite] [--min-region 0.0005] [--amp [bf16|fp16]] [--compile] \
        [--channels-last] [--cfg-options key=value ...] \
        [--partial-checkpoint] [--max-pixels 100000000] [--overlay-size 1000] \
        [--no-overlay] [--save-probs]

CONFIG may also be a model exported by tools/export.py (model.onnx, no
CHECKPOINT): it runs on ONNX Runtime without torch, mmcv or mmseg (a slim
install has only those), with the same outputs; --threads sets its
threads, --shape-sessions how many input shapes get a session of their
own (ONNX Runtime folds their shape arithmetic; 0: one session).

INPUT: an image, a folder (searched recursively for jpg/jpeg/png/bmp/webp
in any case) or a text file with one image path per line (relative paths
are relative to the text file). CONFIG may be an ensemble config (then no
CHECKPOINT; set its members' checkpoints with e.g. --cfg-options
model.members.0.checkpoint=PATH). The device defaults to CUDA where there
is one, as in mmseg's tools. For each image, under DIR (default
work_dirs/infer):

    masks/<name>.png       class ids (palette PNG), original resolution
    overlays/<name>.jpg    colour overlay with a legend (longest side at
                           most --overlay-size; 0: original resolution;
                           none with --no-overlay)
    reports/<name>.json    the image's report line
    probs/<name>.npy       with --save-probs: (C, h, w) float16 class
                           scores at the model's resolution (the resized
                           photo before padding; numpy.load)
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

try:
    from mmengine.config import DictAction
except ImportError:  # the slim runtime: exported models take no options
    DictAction = None

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from cardamage_mmseg.cli.flags import add_speed_args  # noqa: E402
from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.core import (check_output_folder,  # noqa: E402
                                  collect_inputs, finished_report,
                                  write_summary)
from cardamage_mmseg.core.image import MAX_PIXELS  # noqa: E402
from cardamage_mmseg.core.outputs import OVERLAY_MAX_SIDE  # noqa: E402
from cardamage_mmseg.runtime import is_onnx_file  # noqa: E402


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
                   help='longest side of the overlays (default 1000; 0: '
                   'the photo\'s size)')
    p.add_argument('--no-overlay', action='store_true',
                   help='write no overlays (masks and reports only)')
    p.add_argument('--save-probs', action='store_true',
                   help='also write probs/<name>.npy: float16 class scores '
                   'at the model\'s resolution')
    p.add_argument('--workers', type=int, help='data-loader processes '
                   'that decode photos (default on a GPU: a quarter of '
                   'the cores, at least 1; 0: in this process)')
    p.add_argument('--writers', type=int, help='processes that finish and '
                   'write masks, overlays and reports (default on a GPU: '
                   'a quarter of the cores, at least 1; 0: in this '
                   'process)')
    p.add_argument('--lockstep', type=int, help='instead of those '
                   'processes, this many threads write the last batch and '
                   'decode the next while the model waits, so the model '
                   'has the cores to itself (default on the CPU, unless '
                   '--workers or --writers is given: one per core; 0: '
                   'processes)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                   default='none', help='shard the photos over the '
                   'processes of torchrun (tools/dist_infer.sh) or srun '
                   '(tools/slurm_infer.sh); rank 0 writes one report')
    add_speed_args(p)
    p.add_argument('--partial-checkpoint', action='store_true',
                   help='load a checkpoint that does not fit the model '
                   '(what does not fit stays random): for debugging; by '
                   'default such a checkpoint stops the run')
    p.add_argument('--threads', type=int, help='an exported model\'s '
                   'ONNX Runtime threads (default: one per core)')
    p.add_argument('--shape-sessions', type=int, help='an exported '
                   'model\'s sessions specialised to one input shape each '
                   '(default 2; 0: one session for every shape)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction or 'store',
                   help='override config settings, key=value (e.g. '
                   'model.members.0.checkpoint=PATH for an ensemble)')
    args = p.parse_args(argv)
    if len(args.paths) == 1:
        args.checkpoint, args.input = None, args.paths[0]
    elif len(args.paths) == 2:
        args.checkpoint, args.input = args.paths
    else:
        p.error('expected [CHECKPOINT] INPUT')
    if args.batch_size < 1:
        p.error('--batch-size must be >= 1')
    for flag in ('workers', 'writers', 'lockstep'):
        if (getattr(args, flag) or 0) < 0:
            p.error(f'--{flag} must be >= 0')
    if args.lockstep and (args.workers or args.writers):
        p.error('--lockstep runs the work of --workers and --writers in '
                'threads: give one or the other')
    args.onnx = is_onnx_file(args.config)
    if args.onnx:
        torch_only = [flag for flag, value in (
            ('CHECKPOINT', args.checkpoint), ('--amp', args.amp),
            ('--compile', args.compile),
            ('--channels-last', args.channels_last),
            ('--partial-checkpoint', args.partial_checkpoint),
            ('--cfg-options', args.cfg_options),
            ('--launcher', args.launcher != 'none')) if value]
        if torch_only:
            p.error(f'{", ".join(torch_only)}: not for an exported model '
                    f'(it holds its weights, config and precision; shard '
                    f'an exported model by running one process per part '
                    f'of the photos)')
    elif args.threads:
        p.error('--threads is for an exported model (.onnx); a PyTorch '
                'model uses OMP_NUM_THREADS')
    elif args.shape_sessions is not None:
        p.error('--shape-sessions is for an exported model (.onnx)')
    if (args.shape_sessions or 0) < 0:
        p.error('--shape-sessions must be >= 0')
    return args


def default_device(onnx: bool) -> str:
    """CUDA where there is one (PyTorch models, as mmseg's tools do); an
    exported model runs on the CPU unless --device says otherwise."""
    if onnx:
        return 'cpu'
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from cardamage_mmseg.apis import segment_files
    items = collect_inputs(args.input)
    check_output_folder(args.out, args.input, items)
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint {args.checkpoint} not found')
    device = args.device or default_device(args.onnx)
    if args.onnx:  # torch-free
        from cardamage_mmseg.runtime import OnnxSegmenter
        rank, world = 0, 1
        segmenter = OnnxSegmenter(
            args.config, device=device, tta=args.tta,
            min_region_fraction=args.min_region,
            max_pixels=args.max_pixels, threads=args.threads,
            **({} if args.shape_sessions is None else dict(
                shape_sessions=args.shape_sessions)))
    else:
        from cardamage_mmseg.apis import DamageSegmenter
        from cardamage_mmseg.utils.dist import start_shard
        rank, world, local_rank = start_shard(args.launcher)
        if world > 1 and device == 'cuda':
            device = f'cuda:{local_rank}'
        segmenter = DamageSegmenter(
            args.config, args.checkpoint, device, args.tta,
            args.min_region, cfg_options=args.cfg_options, amp=args.amp,
            compile=args.compile, channels_last=args.channels_last,
            strict=not args.partial_checkpoint, max_pixels=args.max_pixels)
    reused, todo = {}, []
    for index in range(rank, len(items), world):  # this process's share
        path, name = items[index]
        report = None if args.overwrite else finished_report(
            args.out, name, path, segmenter.identity,
            overlay=not args.no_overlay, probs=args.save_probs)
        if report is not None:
            reused[index] = dict(file=path, status='exists', **report)
        else:
            todo.append(index)
    bar = tqdm(total=len(todo), desc='infer' if world == 1 else
               f'infer rank {rank}', unit='img')
    run = segment_files(
        segmenter, [items[k] for k in todo], args.out, args.batch_size,
        args.workers, args.writers, args.opacity,
        None if args.no_overlay else args.overlay_size,
        progress=bar.update, save_probs=args.save_probs,
        lockstep=args.lockstep)
    bar.close()
    mine = dict(reused)
    mine.update({todo[k]: row for k, row in zip(run.indices, run.rows)})
    if world > 1:
        from cardamage_mmseg.utils.dist import gather_to_first
        shards = gather_to_first(mine)
    else:
        shards = [mine]
    stopped = run.stopped
    if rank == 0:
        merged = {k: row for shard in shards for k, row in shard.items()}
        rows = [merged[k] for k in sorted(merged)]
        try:
            write_summary(args.out, rows, segmenter.classes)
        except OSError as err:
            stopped = (stopped or 'stopped') + (
                f'; the report could not be written: {err}')
    rate = run.done / run.seconds if run.seconds > 0 and run.done else 0.0
    print(f'\n{run.done} image(s) segmented ({rate:.2f} img/s; model '
          f'{run.model_seconds:.1f}s of {run.seconds:.1f}s), '
          f'{len(reused)} already done, {run.failed} failed'
          + (f' (rank {rank} of {world})' if world > 1 else ''))
    for row in run.rows:
        if row['status'] == 'error':
            print(f'  skipped {row["file"]}: {row["error"]}')
    if rank == 0:
        print(f'outputs: {args.out}/masks, {args.out}/overlays, '
              f'{args.out}/report.csv, {args.out}/report.json')
    if stopped:
        print(f'error: {stopped}', file=sys.stderr)
        return 130 if run.interrupted else 1
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
