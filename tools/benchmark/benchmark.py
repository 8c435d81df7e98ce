"""Benchmarks: converter throughput, the training input pipeline, and the
model zoo (parameters, GFLOPs, latency), printed as markdown tables and
saved as JSON.

    python tools/benchmark/benchmark.py [--what converter pipeline zoo] \
        [--models segformer_b0 segformer_b3 ...] [--size 512] [--runs 5] \
        [--warmup 2] [--device cpu|cuda] [--out work_dirs/benchmark]

Pipeline: the SegFormer configs' training pipeline (JPEG/PNG decode,
random resize, crop, flip, photometric distortion, packing) on the sample
converted at 512, images/s in one process: one data-loader worker's rate,
so ``num_workers`` >= (GPU images/s) / (this rate) keeps a GPU fed.

Latency: batch 1, SIZExSIZE, ``model.encode_decode`` (backbone + head,
logits at the input size), median of ``--runs`` after ``--warmup`` runs, eval mode,
no grad. GFLOPs: mmengine's ``get_model_complexity_info`` (fvcore-style
counting, one multiply-add = one FLOP, as mmseg's get_flops.py).
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import torch  # noqa: E402

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--what', nargs='+', default=['converter', 'zoo'],
                   choices=['converter', 'pipeline', 'zoo'])
    p.add_argument('--models', nargs='+', default=sorted(BASELINES),
                   choices=sorted(BASELINES))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
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
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, f'benchmark_{args.device.replace(":", "")}'
                    f'.json')
    with open(path, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'\nsaved {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
