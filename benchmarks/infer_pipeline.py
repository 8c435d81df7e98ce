"""What inference on 12 MP photos costs around the model, and end to end.

    python benchmarks/infer_pipeline.py [--photos 16] [--size 4032x3024]
        [--config configs/segformer_b0_cardamage.py] [--batch-size 2]
        [--what components pipeline e2e model-components]

- components: milliseconds per photo, wall and CPU time (OpenCV on one
  thread), null model (a fixed map with about 5% damage instead of the
  network), default outputs (mask at the photo's size, overlay, report
  line): decode + pipeline, finish (upsample, report), write; next to the
  old serial path (full decode, full-size class probabilities, full-size
  overlay: what tools/infer.py did before).
- model-components: the same with SegFormer-b0's own masks (random
  weights, ``--damage-share`` below: many small regions, larger windows)
  instead of the null map (the model's time is not counted).
- pipeline: photos/s of ``segment_files`` with the null model for a few
  worker/writer settings (how the CPU work scales with processes).
- scaling: the machine's own ceiling next to the pipeline's: wall ms per
  photo of the null model in one process and in lockstep (one thread per
  core), and in 1, 2, 4, .., cores fully independent processes (fresh
  interpreters, each a shard of the photos as ``tools/dist_infer.sh``
  gives it, warmed up on a photo and started together): what N processes
  can give on this machine at best, with nothing shared.
- e2e: SegFormer-b0 (random weights): model-only images/s at the batch
  size (the prepared inputs fed to the model again and again) and
  ``segment_files`` photos/s on the same photos: in one process, with a
  data-loader worker and a writer process (and a quarter of the cores of
  each where that is more than one), and in lockstep (one thread per core
  prepares the next batch and writes the last while the model waits:
  tools/infer.py's default on the CPU). Random weights call
  60-70% of a photo damage, which real models do not (and the work around
  the model grows with the damage): the damage logit's bias is shifted so
  that ``--damage-share`` of the first photo's model pixels are damage
  (default 0.1; 0: weights as drawn).
Photos: the bundled demo photos scaled up to ``--size`` (JPEG quality 90).
"""
import argparse
import multiprocessing
import os
import os.path as osp
import queue
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.overheads import DEMO_IMG, random_checkpoints  # noqa: E402
from benchmarks.report import save_report  # noqa: E402


def make_photos(folder: str, n: int, size) -> list:
    names = sorted(f for f in os.listdir(DEMO_IMG) if f.endswith('.jpg'))
    paths = []
    for i in range(n):
        src = Image.open(osp.join(DEMO_IMG, names[i % len(names)]))
        path = osp.join(folder, f'photo_{i:03d}.jpg')
        src.convert('RGB').resize(size, Image.Resampling.BILINEAR).save(
            path, quality=90)
        paths.append(path)
    return paths


def null_log_probs(h: int, w: int) -> np.ndarray:
    """(1, 2, h, w) log-probabilities with a few smooth blobs (~5%)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    field = np.zeros((h, w), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(
            0.04, 0.1) * max(h, w)
        field += np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))
    logit = (field - 0.6) * 8
    return np.stack([np.zeros_like(logit), logit])[None].astype(np.float32)


def make_null(segmenter) -> None:
    """Replace the network: every photo gets :func:`null_log_probs` at its
    model size (windows stitched as usual)."""
    def forward(prepared):
        outs = []
        for p in prepared:
            h, w = (int(v) for v in p.pieces[0][1].img_shape)
            outs.append(null_log_probs(h, w))
        return outs
    segmenter.forward = forward


def components(segmenter, paths, out) -> dict:
    """Median milliseconds per photo of each step, wall time and CPU time
    (``time.process_time``: what a core spends, whatever else runs on the
    machine), OpenCV on one thread."""
    import cv2

    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.core.outputs import (OVERLAY_MAX_SIDE, WriteTask,
                                              write_outputs, write_photo)
    from cardamage_mmseg.core.report import damage_report
    from cardamage_mmseg.core.result import finish
    steps = ('prepare', 'finish', 'write', 'old read', 'old report',
             'old write')
    wall = {k: [] for k in steps}
    cpu = {k: [] for k in steps}

    def now():
        return time.perf_counter(), time.process_time()

    def note(key, a, b):
        wall[key].append(b[0] - a[0])
        cpu[key].append(b[1] - a[1])

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for i, path in enumerate(paths):
            t0 = now()
            p = segmenter.prepare_file(path, OVERLAY_MAX_SIDE)
            t1 = now()
            [lp] = segmenter.forward([p])
            t2 = now()
            result = finish(lp, p.size, path, segmenter.combine,
                            segmenter.classes, segmenter.min_region_fraction)
            t3 = now()
            write_photo(WriteTask(out, f'new_{i}', path, lp, p.size, p.rgb,
                                  segmenter.combine, segmenter.classes,
                                  segmenter.palette, 5e-4, 0.5, 'bench',
                                  OVERLAY_MAX_SIDE))
            t4 = now()
            note('prepare', t0, t1)
            note('finish', t2, t3)
            # write_photo finishes again: write = write_photo - finish
            wall['write'].append((t4[0] - t3[0]) - (t3[0] - t2[0]))
            cpu['write'].append((t4[1] - t3[1]) - (t3[1] - t2[1]))
            # the old serial path: full decode, full-size probabilities
            s0 = now()
            rgb = read_image_rgb(path)
            s1 = now()
            full = finish(lp, p.size, path, segmenter.combine,
                          segmenter.classes, 5e-4, full_probs=True)
            report = damage_report(full.mask, full.probs, segmenter.classes)
            s2 = now()
            write_outputs(out, f'old_{i}', path, rgb, full.mask, report,
                          segmenter.classes, segmenter.palette, 0.5, 'bench',
                          0)
            s3 = now()
            note('old read', s0, s1)
            note('old report', s1, s2)
            note('old write', s2, s3)
            del result
    finally:
        cv2.setNumThreads(threads)
    med = {}
    for label, times in (('', wall), ('cpu ', cpu)):
        m = {k: round(statistics.median(v) * 1000, 1)
             for k, v in times.items()}
        for k, v in m.items():
            med[label + k] = v
        med[label + 'new total'] = round(
            m['prepare'] + m['finish'] + m['write'], 1)
        med[label + 'old total'] = round(
            m['old read'] + m['old report'] + m['old write'], 1)
    return med


def pipeline(segmenter, paths, out, settings, batch_size) -> list:
    """Photos/s of :func:`segment_files` with the null model at each
    (workers, writers, lockstep) setting, and its inverse, the wall
    milliseconds per photo."""
    from cardamage_mmseg.apis import segment_files
    rows = []
    items = [(p, osp.splitext(osp.basename(p))[0]) for p in paths]
    for workers, writers, lockstep in settings:
        run = segment_files(segmenter, items, osp.join(
            out, f'w{workers}_{writers}_{lockstep}'), batch_size, workers,
            writers, lockstep=lockstep)
        rate = run.done / run.seconds
        rows.append(dict(workers=workers, writers=writers, lockstep=lockstep,
                         photos_per_s=round(rate, 2), failed=run.failed,
                         wall_ms_per_photo=round(1000 / rate, 1)))
        print(rows[-1], flush=True)
    return rows


def calibrate_damage_share(segmenter, path: str, share: float) -> None:
    """Shift the decode head's damage bias so that ``share`` of the
    model pixels of ``path`` are damage (the network's compute is
    unchanged)."""
    import torch
    [lp] = segmenter.forward([segmenter.prepare_file(path, 0)])
    diff = (lp[0, 1] - lp[0, 0]).ravel()
    shift = float(np.quantile(diff, 1 - share))
    with torch.no_grad():
        segmenter.model.decode_head.conv_seg.bias[1] -= shift


def model_only(segmenter, paths, batch_size, rounds=3) -> float:
    prepared = [segmenter.prepare_file(p, 0) for p in paths[:batch_size]]
    segmenter.forward(prepared)  # warm-up
    start = time.perf_counter()
    for _ in range(rounds):
        segmenter.forward(prepared)
    return rounds * len(prepared) / (time.perf_counter() - start)


def e2e(segmenter, paths, out, batch_size, cores, repeats=1) -> dict:
    """Each setting's photos/s against the model alone, measured just
    before and just after that run (as many images as photos each time:
    this machine's speed drifts by 10-20% within minutes); a run's ratio
    is taken against the faster of its two neighbours (the conservative
    ratio; ``ratio_mean`` against their mean: the machine's slow spells,
    which come and go within seconds, make the faster of two a biased
    reference). ``repeats`` > 1: the settings ``repeats`` times in turn, each
    repeat starting one setting later (a drift in the machine's speed
    then favours no setting by its place); each setting's ``ratio`` is
    the median of its runs'."""
    from cardamage_mmseg.apis import segment_files
    rounds = max(1, len(paths) // batch_size)
    items = [(q, osp.splitext(osp.basename(q))[0]) for q in paths]
    cores_4 = max(1, cores // 4)
    settings = [(0, 0, 0), (1, 1, 0)] + ([(cores_4, cores_4, 0)]
                                         if cores_4 > 1 else []) + [
        (0, 0, cores)]
    alone = [model_only(segmenter, paths, batch_size, rounds)]
    runs = []
    for repeat in range(repeats):
        shift = repeat % len(settings)
        for workers, writers, lockstep in settings[shift:] + \
                settings[:shift]:
            run = segment_files(segmenter, items, osp.join(
                out, f'e2e_{workers}{writers}{lockstep}_{repeat}'),
                batch_size, workers, writers, lockstep=lockstep)
            alone.append(model_only(segmenter, paths, batch_size, rounds))
            rate, speed = max(alone[-2:]), run.done / run.seconds
            runs.append(dict(
                workers=workers, writers=writers, lockstep=lockstep,
                photos_per_s=round(speed, 2),
                model_only=round(rate, 2),
                ratio=round(speed / rate, 3),
                ratio_mean=round(speed / statistics.mean(alone[-2:]), 3),
                model_images_per_s=round(run.done / run.model_seconds, 2),
                damage_share=round(statistics.mean(
                    r['damage_share'] for r in run.rows
                    if 'damage_share' in r), 3)))
            print(runs[-1], flush=True)
    summary = []
    for workers, writers, lockstep in settings:
        mine = [r for r in runs if (r['workers'], r['writers'],
                                    r['lockstep']) == (workers, writers,
                                                       lockstep)]
        summary.append(dict(
            workers=workers, writers=writers, lockstep=lockstep,
            ratio=statistics.median(r['ratio'] for r in mine),
            ratios=[r['ratio'] for r in mine],
            ratio_mean=statistics.median(r['ratio_mean'] for r in mine),
            photos_per_s=statistics.median(r['photos_per_s']
                                           for r in mine)))
    return dict(model_only=round(max(alone), 2),
                model_only_all=[round(v, 2) for v in alone],
                runs=runs, summary=summary)


def _shard_process(config: str, checkpoint: str, items: list, out: str,
                   batch_size: int, ready, go, ends) -> None:
    """One independent process of :func:`scaling`: the null model over
    ``items``, after a warm-up photo; says so on ``ready``, waits for
    ``go``, then puts (photos done, end time) on ``ends``."""
    from cardamage_mmseg.apis import DamageSegmenter, segment_files
    seg = DamageSegmenter(config, checkpoint)
    make_null(seg)
    segment_files(seg, items[:1], out + '_warm', 1, 0, 0, lockstep=0)
    ready.put(1)
    go.wait()
    run = segment_files(seg, items, out, batch_size, 0, 0, lockstep=0)
    ends.put((run.done, time.time()))


def _collect(source, procs, count: int, what: str) -> list:
    """``count`` items from the queue ``source``; a process that exits
    with an error first stops the wait (all are ended), named."""
    got = []
    while len(got) < count:
        try:
            got.append(source.get(timeout=1))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for proc in procs:
                    proc.terminate()
                raise RuntimeError(f'independent process {dead[0].name} '
                                   f'exited with {dead[0].exitcode} {what}')
    return got


def independent(config, checkpoint, items, out, count,
                batch_size) -> float:
    """Wall seconds of ``count`` independent processes (spawned, so each
    is a fresh interpreter) over disjoint shards of ``items``, from their
    common start to the last one's end."""
    ctx = multiprocessing.get_context('spawn')
    ready, go, ends = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_shard_process, args=(
        config, checkpoint, items[i::count], f'{out}_{i}', batch_size,
        ready, go, ends)) for i in range(count)]
    for proc in procs:
        proc.start()
    _collect(ready, procs, count, 'before the start')
    go.set()
    start = time.time()
    results = _collect(ends, procs, count, 'during the run')
    for proc in procs:
        proc.join()
    if sum(done for done, _ in results) != len(items):
        raise RuntimeError(f'independent processes: {results} photos done '
                           f'of {len(items)}')
    return max(end for _, end in results) - start


def scaling(segmenter, config, checkpoint, paths, out, cores, batch_size,
            repeats=1) -> dict:
    """Null model, wall ms per photo: one process, lockstep ``cores``, and
    1, 2, 4, .., ``cores`` independent processes (:func:`independent`);
    settings in turn, each repeat starting one later. Speed-ups:
    ``lockstep`` against one process, ``N independent`` against 1, each
    per repeat, then the median."""
    from cardamage_mmseg.apis import segment_files
    items = [(q, osp.splitext(osp.basename(q))[0]) for q in paths]
    counts = sorted({min(2 ** k, cores) for k in range(cores.bit_length())}
                    | {cores})
    settings = ['one process', f'lockstep {cores}'] + [
        f'{n} independent' for n in counts]
    segment_files(segmenter, items[:1], osp.join(out, 'warm'), 1, 0, 0,
                  lockstep=0)
    ms: dict = {k: [] for k in settings}
    for repeat in range(repeats):
        shift = repeat % len(settings)
        for k in settings[shift:] + settings[:shift]:
            where = osp.join(out, f'{k.replace(" ", "_")}_{repeat}')
            if k.endswith('independent'):
                secs = independent(config, checkpoint, items, where,
                                   int(k.split()[0]), batch_size)
            else:
                start = time.perf_counter()
                segment_files(segmenter, items, where, batch_size, 0, 0,
                              lockstep=0 if k == 'one process' else cores)
                secs = time.perf_counter() - start
            ms[k].append(1000 * secs / len(items))
            print(f'scaling {k}: {ms[k][-1]:.1f} ms per photo', flush=True)
    speedups = {f'lockstep {cores} vs one process': [
        a / b for a, b in zip(ms['one process'], ms[f'lockstep {cores}'])]}
    for n in counts[1:]:
        speedups[f'{n} independent vs 1'] = [
            a / b for a, b in zip(ms['1 independent'], ms[f'{n} independent'])]
    return dict(
        ms_per_photo={k: [round(v, 1) for v in vs] for k, vs in ms.items()},
        median_ms_per_photo={k: round(statistics.median(vs), 1)
                             for k, vs in ms.items()},
        speedup={k: round(statistics.median(vs), 2)
                 for k, vs in speedups.items()},
        speedups={k: [round(v, 2) for v in vs] for k, vs in speedups.items()})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--photos', type=int, default=16)
    p.add_argument('--size', default='4032x3024')
    p.add_argument('--config', default='configs/segformer_b0_cardamage.py')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--device', default='cpu')
    p.add_argument('--what', nargs='+', default=['components', 'pipeline',
                                                  'e2e', 'model-components'],
                   choices=['components', 'pipeline', 'e2e',
                            'model-components', 'scaling'])
    p.add_argument('--repeats', type=int, default=1,
                   help='e2e, scaling: run the settings this many times in '
                   'turn (median)')
    p.add_argument('--damage-share', type=float, default=0.1)
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    import torch

    from cardamage_mmseg.apis import DamageSegmenter
    size = tuple(int(v) for v in args.size.split('x'))
    cores = len(os.sched_getaffinity(0))
    report = dict(config=args.config, photos=args.photos, size=args.size,
                  batch_size=args.batch_size, cores=cores,
                  torch_threads=torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(tmp, args.photos, size)
        [ckpt] = random_checkpoints(tmp, [args.config])
        seg = DamageSegmenter(osp.join(REPO, args.config), ckpt,
                              args.device)
        if {'e2e', 'model-components'} & set(args.what):
            if args.damage_share:
                calibrate_damage_share(seg, paths[0], args.damage_share)
            report['damage_share_target'] = args.damage_share

        def add_components(key: str, label: str) -> None:
            report[key] = components(seg, paths, osp.join(tmp, key))
            print(f'{label} (ms per photo):', report[key], flush=True)

        if 'model-components' in args.what:
            add_components('model_components_ms',
                           "components with the model's masks")
        if 'e2e' in args.what:
            report['e2e'] = e2e(seg, paths, tmp, args.batch_size, cores,
                                args.repeats)
            print('e2e model alone (images/s):',
                  report['e2e']['model_only_all'])
            for row in report['e2e']['summary']:
                print('e2e', row, flush=True)
        make_null(seg)
        if 'components' in args.what:
            add_components('components_ms', 'components')
        if 'pipeline' in args.what:
            settings = [(0, 0, 0), (1, 1, 0)] + (
                [(2, 2, 0)] if cores >= 4 else []) + [(0, 0, cores)]
            report['null_pipeline'] = pipeline(
                seg, paths, osp.join(tmp, 'p'), settings, args.batch_size)
        if 'scaling' in args.what:
            report['scaling'] = scaling(
                seg, osp.join(REPO, args.config), ckpt, paths,
                osp.join(tmp, 's'), cores, args.batch_size, args.repeats)
            print('scaling', report['scaling']['median_ms_per_photo'],
                  report['scaling']['speedup'], flush=True)
    save_report(report, args.out_dir, 'infer_pipeline', args.device)
    return 0


if __name__ == '__main__':
    sys.exit(main())
