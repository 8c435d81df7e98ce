"""Benchmarks: converter throughput, the training input pipeline, the
model zoo (parameters, GFLOPs, latency) and the inference speed switches,
printed as markdown tables and saved as JSON.

    python benchmarks/benchmark.py \
        [--what converter pipeline zoo switches] \
        [--models segformer_b0 segformer_b3 ...] [--size 512] [--runs 5] \
        [--warmup 2] [--batch 4] [--device cpu|cuda] \
        [--out work_dirs/benchmark]

Pipeline: the SegFormer configs' training pipeline (JPEG/PNG decode,
random resize, crop, flip, photometric distortion, packing) on the sample
converted at 512, images/s in one process: one data-loader worker's rate,
so ``num_workers`` >= (GPU images/s) / (this rate) keeps a GPU fed.

Latency: batch 1, SIZExSIZE, ``model.encode_decode`` (backbone + head,
logits at the input size), median of ``--runs`` after ``--warmup`` runs,
eval mode, no grad. GFLOPs: mmengine's ``get_model_complexity_info``
(fvcore-style counting, one multiply-add = one FLOP, as mmseg's
get_flops.py).

Switches: ``model.encode_decode`` at batch ``--batch`` with each inference
switch of ``tools/infer.py`` alone (channels_last, bf16 autocast,
torch.compile, compile + bf16; same random weights and input), images/s as
the median of ``--runs`` after ``--warmup`` calls, the first call's time
(compilation), and the output's distance from fp32 (argmax agreement, max
logit difference).
"""
import argparse
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from benchmarks.report import save_report  # noqa: E402
from cardamage_mmseg.zoo import BASELINES, build_baseline  # noqa: E402

DEMO = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')


def hardware(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, torch threads ' \
        f'{torch.get_num_threads()}'


def sample_entries():
    """The bundled sample's 62 training photos as converter entries."""
    from cardamage_mmseg.datasets.converters import load_via_entries
    folder = osp.join(DEMO, 'train')
    entries, _ = load_via_entries(
        osp.join(folder, 'via_region_data.json'), folder)
    return entries


def bench_converter(nprocs=(1, 2)):
    from cardamage_mmseg.datasets.converters import run_conversion
    entries = sample_entries()
    rows = []
    for nproc in nprocs:
        for size in (512, 0):
            out = tempfile.mkdtemp(prefix='bench_conv_')
            start = time.perf_counter()
            run_conversion(entries, out, size=size, nproc=nproc)
            elapsed = time.perf_counter() - start
            shutil.rmtree(out)
            rows.append(dict(workers=nproc, size=size or 'original',
                             images=len(entries),
                             images_per_s=round(len(entries) / elapsed, 1)))
    return rows


def bench_pipeline(passes=3):
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from cardamage_mmseg.datasets.converters import run_conversion
    root = tempfile.mkdtemp(prefix='bench_pipe_')
    try:
        run_conversion(sample_entries(), root, size=512, nproc=1)
        cfg = Config.fromfile(osp.join(REPO, 'configs',
                                       'segformer_b3_cardamage.py'))
        dataset_cfg = cfg.train_dataloader.dataset
        dataset_cfg.update(data_root=root)
        dataset = DATASETS.build(dataset_cfg)
        dataset[0]  # warm-up (imports, caches)
        start = time.perf_counter()
        for _ in range(passes):
            for i in range(len(dataset)):
                dataset[i]
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(root)
    n = passes * len(dataset)
    return dict(images=n, images_per_s_per_worker=round(n / elapsed, 1),
                ms_per_image=round(1000 * elapsed / n, 2))


def bench_model(name, size, runs, warmup, device):
    from mmengine.analysis import get_model_complexity_info
    model = build_baseline(name, REPO).to(device).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    x = torch.randn(1, 3, size, size, device=device)
    metas = [dict(img_shape=(size, size), pad_shape=(size, size),
                  ori_shape=(size, size))]
    # the FLOP counter cannot see inside fused attention kernels: count the
    # stock MiT (same maths) for SegFormer
    counted = model
    if model.backbone.__class__.__name__ == 'MixVisionTransformerSDPA':
        counted = build_baseline(name, REPO, cfg_options={
            'model.backbone.type': 'MixVisionTransformer'}).eval()

    class Logits(torch.nn.Module):  # the tracer takes tensors only
        def __init__(self, seg):
            super().__init__()
            self.seg = seg

        def forward(self, inputs):
            return self.seg.encode_decode(inputs, metas)

    with torch.no_grad():
        flops = get_model_complexity_info(
            Logits(counted), inputs=(x.cpu(), ), show_table=False,
            show_arch=False)['flops'] / 1e9
        times = []
        for i in range(warmup + runs):
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.encode_decode(x, metas)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return dict(model=name, params_m=round(params, 2),
                gflops=round(flops, 1),
                latency_ms=round(statistics.median(times), 1),
                study_params_m=BASELINES[name].study_params_m,
                study_miou=BASELINES[name].study_miou)


#: inference switches of tools/infer.py / DamageSegmenter, one at a time
SWITCHES = {'fp32': {}, 'channels_last': dict(channels_last=True),
            'bf16': dict(amp='bf16'), 'compile': dict(compile=True),
            'compile + bf16': dict(compile=True, amp='bf16')}


def bench_switches(name, size, batch, runs, warmup, device):
    """Inference time of one baseline with each switch (same random
    weights and input), and how far its output moves: the share of pixels
    whose argmax matches fp32 and the largest logit difference."""
    import copy

    from cardamage_mmseg.engine import compile_network, to_channels_last
    from cardamage_mmseg.engine.amp import AMP_DTYPES
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device)
    metas = [dict(img_shape=(size, size), pad_shape=(size, size),
                  ori_shape=(size, size))] * batch
    state, ref, rows = None, None, []
    for case, opts in SWITCHES.items():
        model = build_baseline(name, REPO).to(device).eval()
        if state is None:
            state = copy.deepcopy(model.state_dict())
        model.load_state_dict(state)
        inputs = x
        if opts.get('channels_last'):
            to_channels_last(model)
            inputs = x.contiguous(memory_format=torch.channels_last)
        if opts.get('compile'):
            compile_network(model)
        cast = AMP_DTYPES.get(opts.get('amp'))
        autocast = torch.autocast(torch.device(device).type, dtype=cast,
                                  enabled=cast is not None)
        times = []
        with torch.no_grad(), autocast:
            for i in range(warmup + runs):
                if device.startswith('cuda'):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                logits = model.encode_decode(inputs, metas)
                if device.startswith('cuda'):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        logits = logits.float()
        if ref is None:
            ref = logits
        rows.append(dict(
            model=name, case=case, batch=batch,
            images_per_s=round(batch / statistics.median(times[warmup:]),
                               2),
            first_call_s=round(times[0], 1),
            argmax_agreement=round(float(
                (logits.argmax(1) == ref.argmax(1)).float().mean()), 4),
            max_logit_diff=round(float((logits - ref).abs().max()), 4)))
        print(f"    {case:16s} {rows[-1]['images_per_s']:8.2f} img/s",
              flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--what', nargs='+', default=['converter', 'zoo'],
                   choices=['converter', 'pipeline', 'zoo', 'switches'])
    p.add_argument('--models', nargs='+', default=sorted(BASELINES),
                   choices=sorted(BASELINES))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--batch', type=int, default=4,
                   help='batch size of --what switches')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default='work_dirs/benchmark')
    args = p.parse_args(argv)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    report = dict(hardware=hardware(args.device), torch=torch.__version__)
    print(f'hardware: {report["hardware"]}; torch {torch.__version__}')
    if 'converter' in args.what:
        rows = bench_converter()
        report['converter'] = rows
        print('\n| workers | output size | images | images/s |')
        print('|---|---|---|---|')
        for r in rows:
            print(f"| {r['workers']} | {r['size']} | {r['images']} | "
                  f"{r['images_per_s']} |")
    if 'pipeline' in args.what:
        row = bench_pipeline()
        report['pipeline'] = row
        print('\n| training pipeline @512 | images | ms/image | images/s per '
              'worker |\n|---|---|---|---|')
        print(f"| segformer configs | {row['images']} | "
              f"{row['ms_per_image']} | {row['images_per_s_per_worker']} |")
    if 'zoo' in args.what:
        rows = []
        for i, name in enumerate(args.models, 1):
            print(f'[{i}/{len(args.models)}] {name} ...', flush=True)
            rows.append(bench_model(name, args.size, args.runs, args.warmup,
                                    args.device))
        report['zoo'] = dict(size=args.size, runs=args.runs,
                             warmup=args.warmup, device=args.device,
                             rows=rows)
        print(f'\n| model | params (M) | GFLOPs @{args.size} | '
              f'{args.device} latency (ms, median of {args.runs}) |')
        print('|---|---|---|---|')
        for r in rows:
            print(f"| {r['model']} | {r['params_m']} | {r['gflops']} | "
                  f"{r['latency_ms']} |")
    if 'switches' in args.what:
        rows = []
        for i, name in enumerate(args.models, 1):
            print(f'[{i}/{len(args.models)}] {name} ...', flush=True)
            rows += bench_switches(name, args.size, args.batch, args.runs,
                                   args.warmup, args.device)
        report['switches'] = dict(size=args.size, runs=args.runs,
                                  warmup=args.warmup, device=args.device,
                                  rows=rows)
        print('\n| model | switch | batch | images/s | x fp32 | first call '
              '(s) | argmax = fp32 | max logit diff |\n'
              '|---|---|---|---|---|---|---|---|')
        fp32 = {r['model']: r for r in rows if r['case'] == 'fp32'}
        for r in rows:
            speedup = r['images_per_s'] / fp32[r['model']]['images_per_s']
            print(f"| {r['model']} | {r['case']} | {r['batch']} | "
                  f"{r['images_per_s']} | {speedup:.2f} | "
                  f"{r['first_call_s']} | {100 * r['argmax_agreement']:.2f}% "
                  f"| {r['max_logit_diff']} |")
    save_report(report, args.out, 'benchmark', args.device)
    return 0


if __name__ == '__main__':
    sys.exit(main())
