"""The deployed path against the training stack and the study's stack, on
the CPU: speed of exported models (ONNX Runtime fp32, int8) and what int8
costs in agreement.

    python benchmarks/export_speed.py [--models b0 b3 mvit hf-b0 hf-b3]
        [--runs 10]
        [--agreement-checkpoint work_dirs/segformer_b0_cardamage_demo/...]
        [--threads N] [--batches 1 2 4]

speed, random weights, inputs 512 x 512 (a demo photo, resized), one
process, the same threads for every stack, every case of a table timed in
turns (one call of each per round, medians): this machine's speed drifts
by 20-30% within minutes, and timing one case after another put the drift
into the ratios:

- bare model, images/s: torch fp32 (and for SegFormer with mmseg's own
  MiT attention too, which our SDPA backbone replaces, and with the
  export's per-stage head fusion; HF's head, per stage in eval mode, also
  in HF's concatenating form), torch bf16
  autocast, the study's
  stack (HF transformers SegFormer with bf16 autocast, logits upsampled to
  the input; skipped without transformers), the ONNX Runtime session
  alone (fp32, int8 dynamic, int8 static: the runtime's session for the
  input's shape; fp32 also with the generic session);
- through the runtime, photos/s: ``DamageSegmenter(config)`` vs
  ``DamageSegmenter('model.onnx')`` (prepare, model, mask at the photo's
  size, report) on the demo photos at their own size.

``--batches 1 2 4``: the study's stack and the ONNX files once more, at
each of these batches, all in turns; each stack at its best batch and the
fastest file against the study's stack, each at its best ("the study's
stack at its best CPU setting").

agreement (``--agreement-checkpoint``, a trained SegFormer-b0 such as
``make demo``'s): masks of int8 vs fp32 over every bundled photo (pixel
share), and val mIoU of fp32 vs int8 (8 photos: noisy; agreement is the
main figure). Cold start of the slim runtime: import + session creation in
a fresh interpreter.
"""
import argparse
import contextlib
import glob
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from typing import Callable, Dict, List

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.overheads import random_checkpoints  # noqa: E402
from benchmarks.report import save_report  # noqa: E402

SAMPLE = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')
MODELS = {
    'b0': ('configs/segformer_b0_cardamage.py', 2, 'b0'),
    'b3': ('configs/segformer_b3_cardamage.py', 1, 'b3'),
    'mvit': ('configs/deeplabv3_mobilevit-s_cardamage.py', 1, None),
    # HF's head, the study's exact model (HF checkpoints convert to it)
    'hf-b0': ('configs/segformer_hf_b0_cardamage.py', 2, 'b0'),
    'hf-b3': ('configs/segformer_hf_b3_cardamage.py', 1, 'b3'),
}


def interleaved(fns: Dict[str, Callable[[], object]], runs: int,
                warmup: int = 2) -> Dict[str, float]:
    """Median seconds of each ``fns[k]()`` over ``runs`` rounds after
    ``warmup`` calls each; a round calls every ``fn`` once, in turn, so a
    drift of the machine's speed reaches all cases alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def all_photos():
    return sorted(glob.glob(osp.join(SAMPLE, '*', '*.jpg')))


def square_photo(size: int) -> np.ndarray:
    img = Image.open(osp.join(SAMPLE, 'val', '1.jpg')).convert('RGB')
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))


def export_all(seg, config, ckpt, folder, sample, calib):
    """fp32, int8 dynamic and int8 static files of one model."""
    from cardamage_mmseg.apis.export import export_onnx, set_metadata
    from cardamage_mmseg.runtime.quantize import quantize_int8
    name = osp.splitext(osp.basename(config))[0]
    files = dict(fp32=osp.join(folder, name + '.onnx'))
    meta = export_onnx(seg, config, ckpt, files['fp32'], sample)
    for mode in ('dynamic', 'static'):
        path = osp.join(folder, f'{name}_int8_{mode}.onnx')
        quantize_int8(files['fp32'], path, mode,
                      calib if mode == 'static' else ())
        set_metadata(path, dict(meta, quantization=dict(mode=mode)))
        files[f'int8 {mode}'] = path
    return files


def study_stack(forward, batch: int, size: int) -> Callable[[], None]:
    """One call of the study's stack on ``batch`` random images of
    ``size``: HF SegFormer's ``forward`` (``gpu_speed.build_hf``) in bf16
    autocast, logits upsampled to the input."""
    import torch
    import torch.nn.functional as F
    x = torch.randn(batch, 3, size, size)

    def study():
        with torch.no_grad(), torch.autocast('cpu', torch.bfloat16):
            F.interpolate(forward(x), size=x.shape[2:], mode='bilinear',
                          align_corners=False)
    return study


def hf_call(args, hf_arch, batch) -> Dict[str, Callable[[], object]]:
    """The study's stack: HF transformers SegFormer, bf16 autocast, logits
    upsampled to the input (one call of ``batch`` images), if transformers
    is installed."""
    if not hf_arch:
        return {}
    try:
        from benchmarks.gpu_speed import build_hf
        forward, model = build_hf(hf_arch)
    except ImportError as err:
        print(f'HF reference skipped: {err}')
        return {}
    model.eval()
    return {'HF transformers bf16 (study)': study_stack(forward, batch,
                                                        args.size)}


def speed(args, key, folder) -> dict:
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.models.bound_forwards import bind_forwards
    from cardamage_mmseg.models.decode_heads import SegformerHFHead
    from cardamage_mmseg.models.stagewise_fusion import stagewise_fusion
    from cardamage_mmseg.runtime import OnnxSegmenter
    config, batch, hf_arch = MODELS[key]
    if args.hf_only:
        secs = interleaved(hf_call(args, hf_arch, batch), args.runs)
        return dict(model=key, batch=batch, images_per_s={
            k: round(batch / v, 2) for k, v in secs.items()})
    [ckpt] = random_checkpoints(folder, [config])
    seg = DamageSegmenter(osp.join(REPO, config), ckpt)
    rgb = square_photo(args.size)
    calib = sorted(glob.glob(osp.join(SAMPLE, 'train', '*.jpg')))[:32]
    t0 = time.perf_counter()
    files = export_all(seg, config, ckpt, folder, rgb, calib)
    row = dict(model=key, config=config, batch=batch,
               export_and_quantize_s=round(time.perf_counter() - t0, 1))
    pieces = [seg.prepare(rgb, 'x').pieces[0]] * batch
    calls = {'torch fp32': partial(seg._run, pieces)}
    with contextlib.ExitStack() as stack:
        if seg.cfg.model.backbone.type == 'MixVisionTransformerSDPA':
            # the probe timed mmseg's own MiT (the same weights)
            stock = DamageSegmenter(osp.join(REPO, config), ckpt,
                                    cfg_options={'model.backbone.type':
                                                 'MixVisionTransformer'})
            calls['torch fp32 stock MiT'] = partial(stock._run, pieces)
        head = seg.cfg.model.decode_head.type
        if head == 'SegformerHead':
            # the export's head rewrite, in torch: what of ORT's lead is
            # the rewrite's (the PyTorch path keeps mmseg's forward)
            staged = DamageSegmenter(osp.join(REPO, config), ckpt)
            stack.enter_context(stagewise_fusion(staged.model))
            calls['torch fp32 stagewise head'] = partial(staged._run, pieces)
        elif head == 'SegformerHFHead':
            # HF's head runs per stage in eval mode; HF's own form beside it
            concat = DamageSegmenter(osp.join(REPO, config), ckpt)
            stack.enter_context(bind_forwards(concat.model, {
                SegformerHFHead: (SegformerHFHead.forward_concat, None)}))
            calls['torch fp32 concat head (HF)'] = partial(concat._run,
                                                           pieces)
        bf16 = DamageSegmenter(osp.join(REPO, config), ckpt, amp='bf16')
        calls['torch bf16'] = partial(bf16._run, pieces)
        calls.update(hf_call(args, hf_arch, batch))
        for kind, path in files.items():
            # the runtime's session for this input shape (met twice in the
            # warm-up); 'generic': the one session with free dimensions
            for shaped in (2, 0) if kind == 'fp32' else (2,):
                onnx_seg = OnnxSegmenter(path, threads=args.threads,
                                         shape_sessions=shaped)
                x = np.stack([onnx_seg._prepare_piece(rgb, 'x')[0][0]]
                             * batch)
                calls[f'ORT {kind}' + ('' if shaped else ' generic')] = \
                    partial(onnx_seg._session_run, x)
        rate = {k: batch / v
                for k, v in interleaved(calls, args.runs).items()}
    del calls
    row['images_per_s'] = {k: round(v, 2) for k, v in rate.items()}
    base = rate['torch fp32']
    row['vs_torch_fp32'] = {k: round(v / base, 2) for k, v in rate.items()}
    if 'HF transformers bf16 (study)' in rate:
        best = max(rate['ORT fp32'], rate['ORT int8 dynamic'],
                   rate['ORT int8 static'])
        row['best_ort_vs_study'] = round(
            best / rate['HF transformers bf16 (study)'], 2)
    if args.batches and hf_arch:
        row['batch_sweep'] = batch_sweep(args, hf_arch, files, rgb)
    # through the runtime: photos at their own size, batch as above
    photos = [np.asarray(Image.open(p).convert('RGB'))
              for p in sorted(glob.glob(osp.join(SAMPLE, 'val', '*.jpg')))]
    photos = photos[:max(batch, 4)]
    names = [f'p{i}' for i in range(len(photos))]

    def through(s):
        for i in range(0, len(photos), batch):
            s.predict_arrays(photos[i:i + batch], names[i:i + batch])
    runners = dict(torch_fp32=seg)
    for kind in ('fp32', 'int8 dynamic', 'int8 static'):
        runners[f'onnx {kind}'] = OnnxSegmenter(files[kind],
                                                threads=args.threads)
    secs = interleaved({k: partial(through, s) for k, s in runners.items()},
                       max(2, args.runs // 3), 1)
    runtime = {k: len(photos) / v for k, v in secs.items()}
    row['runtime_photos_per_s'] = {k: round(v, 2) for k, v in
                                   runtime.items()}
    row['runtime_vs_torch_fp32'] = {
        k: round(v / runtime['torch_fp32'], 2) for k, v in runtime.items()}
    row['photo_sizes'] = sorted({p.shape[:2] for p in photos})
    row['file_mb'] = {k: round(osp.getsize(v) / 1e6, 1)
                      for k, v in files.items()}
    print(row, flush=True)
    return row


def batch_sweep(args, hf_arch, files, rgb) -> dict:
    """The study's stack and each ONNX file at every batch of
    ``--batches``, all in turns: images/s, each stack's best batch, and
    the fastest file against the study's stack, each at its best."""
    from benchmarks.gpu_speed import build_hf
    from cardamage_mmseg.runtime import OnnxSegmenter
    forward, model = build_hf(hf_arch)
    model.eval()
    sessions = {kind: OnnxSegmenter(path, threads=args.threads,
                                    shape_sessions=len(args.batches))
                for kind, path in files.items()}
    x = sessions['fp32']._prepare_piece(rgb, 'x')[0][0]
    calls = {}
    for batch in args.batches:
        calls[('HF transformers bf16 (study)', batch)] = study_stack(
            forward, batch, args.size)
        for kind, seg in sessions.items():
            calls[(f'ORT {kind}', batch)] = partial(
                seg._session_run, np.stack([x] * batch))
    rate = {k: k[1] / v for k, v in interleaved(calls, args.runs).items()}
    best = {}
    for (name, batch), value in rate.items():
        if value > best.get(name, (0, 0))[0]:
            best[name] = (round(value, 2), batch)
    study = best.pop('HF transformers bf16 (study)')
    fastest = max(best, key=lambda k: best[k][0])
    out = dict(images_per_s={f'{k} @ batch {b}': round(v, 2)
                             for (k, b), v in rate.items()},
               best_batch=dict(best, **{'HF transformers bf16 (study)':
                                        study}),
               fastest_file=fastest,
               best_ort_vs_study=round(best[fastest][0] / study[0], 2))
    print(out, flush=True)
    return out


def agreement(args, folder) -> dict:
    """int8 vs fp32 masks over the bundled photos; val mIoU of each."""
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.runtime import OnnxSegmenter
    config = args.agreement_config
    seg = DamageSegmenter(config, args.agreement_checkpoint)
    photos = all_photos()
    calib = sorted(glob.glob(osp.join(SAMPLE, 'train', '*.jpg')))[:32]
    files = export_all(seg, config, args.agreement_checkpoint, folder,
                       read_image_rgb(photos[0]), calib)
    segs = {k: OnnxSegmenter(v, threads=args.threads)
            for k, v in files.items()}
    masks = {k: [] for k in ['torch'] + list(segs)}
    for path in photos:
        masks['torch'].append(seg(path)[0].mask)
        for k, s in segs.items():
            masks[k].append(s(path)[0].mask)
    out = dict(config=config, checkpoint=args.agreement_checkpoint,
               photos=len(photos))
    for k in segs:
        same = sum(int((a == b).sum()) for a, b in
                   zip(masks[k], masks['fp32']))
        total = sum(a.size for a in masks['fp32'])
        worst = min(float((a == b).mean()) for a, b in
                    zip(masks[k], masks['fp32']))
        out[f'{k} vs fp32'] = dict(pixel_agreement=round(same / total, 6),
                                   worst_photo=round(worst, 6))
    same = sum(int((a == b).sum()) for a, b in
               zip(masks['fp32'], masks['torch']))
    out['fp32 vs torch'] = round(same / sum(a.size for a in masks['torch']),
                                 6)
    # val mIoU against the VIA labels, converted at the photo's size
    out['val_miou'] = {k: val_miou(m, photos) for k, m in masks.items()}
    print(out, flush=True)
    return out


def val_miou(masks, photos) -> float:
    """mIoU (background, damage) x 100 over the val photos, labels drawn
    from the sample's VIA polygons at the photo's size."""
    from benchmarks.mask_agreement import demo_truth, truth_mask
    truth = demo_truth()
    inter, union = np.zeros(2), np.zeros(2)
    for mask, path in zip(masks, photos):
        if osp.basename(osp.dirname(path)) != 'val':
            continue
        gt = truth_mask(truth[osp.basename(path)], *mask.shape)
        valid = gt != 255
        for c in (0, 1):
            a, b = (mask == c) & valid, (gt == c) & valid
            inter[c] += np.count_nonzero(a & b)
            union[c] += np.count_nonzero(a | b)
    return round(float(np.mean(inter / np.maximum(union, 1))) * 100, 2)


def cold_start(path: str) -> float:
    """Seconds of ``import`` + session creation of the runtime, fresh
    interpreter."""
    code = ('import time; t = time.perf_counter()\n'
            'from cardamage_mmseg.apis import DamageSegmenter\n'
            f'DamageSegmenter({path!r})\n'
            'print(time.perf_counter() - t)\n')
    res = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return round(float(res.stdout.strip().splitlines()[-1]), 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='*', default=['b0', 'b3', 'mvit'],
                   choices=sorted(MODELS),
                   help='none: the agreement only')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--runs', type=int, default=10)
    p.add_argument('--threads', type=int, default=None,
                   help='ONNX Runtime threads (default: torch\'s)')
    p.add_argument('--batches', type=int, nargs='+', default=[],
                   help='also time the study\'s stack and the ONNX files '
                   'at each of these batches (SegFormer), each at its best')
    p.add_argument('--hf-only', action='store_true',
                   help='time only the study\'s HF stack')
    p.add_argument('--agreement-checkpoint')
    p.add_argument('--agreement-config',
                   default=osp.join(REPO, 'configs',
                                    'segformer_b0_cardamage_demo.py'))
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    import torch
    args.threads = args.threads or torch.get_num_threads()
    report = dict(cores=len(os.sched_getaffinity(0)),
                  torch_threads=torch.get_num_threads(),
                  ort_threads=args.threads, size=args.size, rows=[])
    import onnxruntime
    report['versions'] = dict(torch=torch.__version__,
                              onnxruntime=onnxruntime.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models:
            report['rows'].append(speed(args, key, tmp))
        if args.agreement_checkpoint:
            report['agreement'] = agreement(args, tmp)
        first = glob.glob(osp.join(tmp, '*.onnx'))[:0 if args.hf_only
                                                    else None]
        if first:
            report['cold_start_s'] = cold_start(sorted(first)[0])
            print('cold start (import + session) s:', report['cold_start_s'])
    save_report(report, args.out_dir, 'export_speed' + (
        '_hf' if args.hf_only else ''), 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
