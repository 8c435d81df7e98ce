"""Peak memory of ``tools/infer.py`` per photo size (random weights).

Each case runs ``tools/infer.py`` on one photo in a fresh process (by
default with every stage in that process: ``--workers 0 --writers 0``) and
reads its peak resident memory (``ru_maxrss``) and its largest child's; the
same run on a 64 x 48 photo is the baseline (interpreter, libraries,
model), so ``photo`` = peak - baseline is what one photo in flight costs.

    python benchmarks/memory.py [--config configs/segformer_b0_cardamage.py]
        [--repo PATH]   # another checkout's tools/infer.py, to compare

Cases: 12 MP and 24 MP JPEGs (a demo photo scaled up), a 100 MP all-zero
PNG (97 KB: the decompression-bomb-like case) and a 4000 x 220 strip.
"""
import argparse
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.overheads import DEMO_IMG, random_checkpoints  # noqa: E402
from benchmarks.report import save_report  # noqa: E402

RUNNER = '''
import resource, runpy, sys
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
except SystemExit as exit:
    code = exit.code
else:
    code = 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print('PEAK_KIB', peak, 'RC', code, 'CHILD_KIB', child, file=sys.stderr)
'''


def make_photos(folder: str) -> dict:
    src = Image.open(osp.join(DEMO_IMG, '1.jpg')).convert('RGB')
    cases = {}
    for name, size in (('tiny 64x48', (64, 48)),
                       ('12 MP 4032x3024 JPEG', (4032, 3024)),
                       ('24 MP 5664x4248 JPEG', (5664, 4248)),
                       ('strip 4000x220 JPEG', (4000, 220))):
        path = osp.join(folder, name.split()[0] + f'_{size[0]}.jpg')
        src.resize(size, Image.Resampling.BILINEAR).save(path, quality=90)
        cases[name] = path
    path = osp.join(folder, 'zeros_100mp.png')
    Image.fromarray(np.zeros((10000, 10000), np.uint8)).save(path)
    cases['100 MP all-zero PNG'] = path
    return cases


def peak_of(repo: str, config: str, ckpt: str, photo: str,
            out: str, extra=()) -> tuple:
    cmd = [sys.executable, '-c', RUNNER, osp.join(repo, 'tools',
                                                   'infer.py'),
           config, ckpt, photo, '--out', out, '--device', 'cpu', *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
    line = [ln for ln in res.stderr.splitlines()
            if ln.startswith('PEAK_KIB')]
    if not line:
        return None, None, res.stderr[-500:]
    _, kib, _, code, _, child_kib = line[-1].split()
    ok = code == '0' and '1 image(s) segmented' in res.stdout
    return int(kib) / 1024, int(child_kib) / 1024, (
        'ok' if ok else res.stdout[-300:] + res.stderr[-300:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default='configs/segformer_b0_cardamage.py')
    p.add_argument('--repo', default=REPO,
                   help='checkout whose tools/infer.py runs')
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    p.add_argument('--infer-args', nargs='*', default=[
        '--workers', '0', '--writers', '0'], help='extra tools/infer.py '
        'arguments (default: every stage in one process, so its peak is '
        'the whole cost; [] for an older checkout without them)')
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        [ckpt] = random_checkpoints(tmp, [args.config])
        config = osp.join(REPO, args.config)
        photos = make_photos(tmp)
        base = None
        for name, photo in photos.items():
            peak, child, status = peak_of(
                args.repo, config, ckpt, photo,
                osp.join(tmp, 'out_' + osp.basename(photo)),
                args.infer_args)
            if base is None:
                base = peak
            extra = None if peak is None or base is None else peak - base
            rows.append(dict(photo=name, peak_mib=peak, photo_mib=extra,
                             largest_child_mib=child, status=status))
            print(f'{name:24s} peak {peak or 0:8.0f} MiB  photo '
                  f'{extra or 0:8.0f} MiB  largest child {child or 0:6.0f} '
                  f'MiB  {status[:120]}', flush=True)
    save_report(dict(config=args.config, repo=args.repo, rows=rows),
                args.out_dir, 'memory', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
