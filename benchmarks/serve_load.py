"""A bounded load test of tools/serve.py on loopback: latency, throughput,
batching, memory.

    python benchmarks/serve_load.py [--model b0.onnx] [--clients 8]
        [--requests 1000] [--size 320x240] [--threads N]

Starts the service (an exported model: default SegFormer-b0 with random
weights, exported here) on 127.0.0.1, then:

- one client, one 1 MP photo at a time: p50/p95 latency next to the
  model's own time for that photo in this process (DamageSegmenter on the
  same bytes, mask PNG included): the serving overhead;
- ``--clients`` concurrent clients sending ``--requests`` requests of
  small photos in all, with ``--max-batch 8`` and again with
  ``--max-batch 1``: errors, p50/p95, requests/s, the batch sizes the
  service reports, and the server's resident memory sampled as the run
  goes (the growth from the first quarter to the end).
Every loop is bounded in count and time and talks to 127.0.0.1 only.
"""
import argparse
import io
import os
import os.path as osp
import statistics
import sys
import tempfile
import threading
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tests'))

from benchmarks.report import save_report  # noqa: E402

SAMPLE = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')


def photo_bytes(name: str, size) -> bytes:
    from PIL import Image
    img = Image.open(osp.join(SAMPLE, 'val', name)).convert('RGB')
    buf = io.BytesIO()
    img.resize(size).save(buf, 'JPEG', quality=90)
    return buf.getvalue()


def rss_mib(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: List[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def load(base: str, pid: int, photos: List[bytes], clients: int,
         requests: int, max_seconds: float = 600.0) -> Dict:
    """``requests`` POSTs from ``clients`` threads (bounded by count and
    ``max_seconds``): statuses, latency, throughput, server RSS."""
    from serving import segment
    lock = threading.Lock()
    state = dict(sent=0)
    latencies, statuses, rss = [], {}, []
    deadline = time.monotonic() + max_seconds

    def client(k: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                if state['sent'] >= requests:
                    return
                i = state['sent']
                state['sent'] += 1
            data = photos[i % len(photos)]
            t0 = time.perf_counter()
            try:
                status, _, _ = segment(base, [('file', f'p{i}.jpg', data)],
                                       timeout=120)
            except OSError as err:
                status = f'{type(err).__name__}'
            with lock:
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

    def sampler() -> None:
        while any(t.is_alive() for t in threads):
            rss.append((state['sent'], rss_mib(pid)))
            time.sleep(0.25)
    threads = [threading.Thread(target=client, args=(k,))
               for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    watch = threading.Thread(target=sampler)
    watch.start()
    for t in threads:
        t.join()
    watch.join()
    seconds = time.perf_counter() - t0
    quarter = [m for n, m in rss if n <= requests // 4] or [rss[0][1]]
    return dict(clients=clients, requests=len(latencies),
                statuses={str(k): v for k, v in statuses.items()},
                errors=sum(v for k, v in statuses.items() if k != 200),
                p50_ms=round(percentile(latencies, 0.5) * 1000, 1),
                p95_ms=round(percentile(latencies, 0.95) * 1000, 1),
                requests_per_s=round(len(latencies) / seconds, 2),
                rss_first_quarter_mib=round(max(quarter), 1),
                rss_end_mib=round(rss[-1][1], 1),
                rss_max_mib=round(max(m for _, m in rss), 1))


def batch_sizes(base: str) -> Dict[str, int]:
    from serving import request
    _, _, raw = request(base + '/metrics')
    sizes = {}
    for line in raw.decode().splitlines():
        if line.startswith('cardamage_batch_size_total{'):
            size = line.split('"')[1]
            sizes[size] = int(float(line.split()[-1]))
    return sizes


def one_client(base: str, model: str, data: bytes, runs: int,
               threads: int) -> Dict:
    """Served latency of one 1 MP photo vs the same work in-process."""
    from serving import segment

    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.serve.app import _png_b64
    seg = DamageSegmenter(model, threads=threads)

    def local():
        [r] = seg(data)
        _png_b64(r.mask, seg.palette)
    local()
    own = []
    for _ in range(runs):
        t0 = time.perf_counter()
        local()
        own.append(time.perf_counter() - t0)
    served_t = []
    segment(base, [('file', 'warm.jpg', data)])
    for _ in range(runs):
        t0 = time.perf_counter()
        status, _, _ = segment(base, [('file', 'one.jpg', data)])
        assert status == 200
        served_t.append(time.perf_counter() - t0)
    p95_own = percentile(own, 0.95)
    return dict(runs=runs, model_own_p50_ms=round(
        statistics.median(own) * 1000, 1),
        model_own_p95_ms=round(p95_own * 1000, 1),
        served_p50_ms=round(statistics.median(served_t) * 1000, 1),
        served_p95_ms=round(percentile(served_t, 0.95) * 1000, 1),
        overhead_p95=round(percentile(served_t, 0.95) / p95_own, 3))


def random_b0(folder: str) -> str:
    """SegFormer-b0 (the real config: 512 px) with random weights,
    exported."""
    from benchmarks.overheads import random_checkpoints

    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.apis.export import export_onnx
    from cardamage_mmseg.core.image import read_image_rgb
    config = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
    [ckpt] = random_checkpoints(folder, ['configs/segformer_b0_cardamage.py'])
    path = osp.join(folder, 'b0_random.onnx')
    export_onnx(DamageSegmenter(config, ckpt), config, ckpt, path,
                read_image_rgb(osp.join(SAMPLE, 'val', '1.jpg')))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', help='an exported .onnx (default: random '
                   'SegFormer-b0, exported here)')
    p.add_argument('--clients', type=int, default=8)
    p.add_argument('--requests', type=int, default=1000)
    p.add_argument('--size', default='320x240')
    p.add_argument('--one-client-runs', type=int, default=20)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    from serving import served
    size = tuple(int(v) for v in args.size.split('x'))
    names = sorted(n for n in os.listdir(osp.join(SAMPLE, 'val'))
                   if n.endswith('.jpg'))
    small = [photo_bytes(n, size) for n in names]
    one_mp = photo_bytes(names[0], (1155, 866))
    report = dict(cores=len(os.sched_getaffinity(0)), size=args.size,
                  threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_b0(tmp)
        report['model'] = osp.basename(model)
        common = ['--threads', str(args.threads), '--max-queue', '256']
        with served(model, *common, '--max-batch', '8') as (base, proc):
            report['one_client_1mp'] = one_client(
                base, model, one_mp, args.one_client_runs, args.threads)
            print('one client:', report['one_client_1mp'], flush=True)
            report['batched'] = load(base, proc.pid, small, args.clients,
                                     args.requests)
            report['batched']['batch_sizes'] = batch_sizes(base)
            print('batched:', report['batched'], flush=True)
        with served(model, *common, '--max-batch', '1') as (base, proc):
            report['one_at_a_time'] = load(base, proc.pid, small,
                                           args.clients, args.requests)
            print('max-batch 1:', report['one_at_a_time'], flush=True)
            single = load(base, proc.pid, small, 1,
                          max(50, args.requests // 10))
            report['one_client_small'] = single
            print('one client, small photos:', single, flush=True)
    report['batched_vs_one_at_a_time'] = round(
        report['batched']['requests_per_s'] /
        report['one_at_a_time']['requests_per_s'], 2)
    report['eight_vs_one_client'] = round(
        report['batched']['requests_per_s'] /
        report['one_client_small']['requests_per_s'], 2)
    save_report(report, args.out_dir, 'serve_load', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
