"""CPU work per 12 MP photo of the serial path the scale issue was measured
on, on today's machine: the baseline of its "12x better" goal.

The scale issue timed ``read_image_rgb``, ``damage_report`` and
``write_outputs`` of ``tools/infer.py`` (main at 6b3bb78, 2026-11-26) on
photos of 4032x3024, with no model. This machine's speed drifts by up to
2x from day to day, so the baseline is re-measured next to today's
figures (``infer_pipeline.py --what components``): check that commit out
somewhere and pass it.

    git worktree add /tmp/old 6b3bb78
    python benchmarks/serial_baseline.py --repo /tmp/old [--photos 8]

The mask and the full-size probabilities are those of
``infer_pipeline.py``'s null model (made here, with today's code, and not
timed); OpenCV on one thread, as there. CPU time (``process_time``) and
wall time, medians over the photos.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.infer_pipeline import make_photos, null_log_probs  # noqa
from benchmarks.report import save_report  # noqa: E402

# runs in the old checkout (its package first on the path)
TIMER = r'''
import json, statistics, sys, tempfile, time, types
import cv2
import numpy as np
repo, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [repo, repo + '/tools']
cv2.setNumThreads(1)
import cardamage_mmseg
assert cardamage_mmseg.__file__.startswith(repo), cardamage_mmseg.__file__
from cardamage_mmseg.apis.inference import (DamageResult, damage_report,
                                            read_image_rgb)
import infer
mask = np.load(folder + '/mask.npy')
probs = np.load(folder + '/probs.npy')
seg = types.SimpleNamespace(classes=('background', 'damage'),
                            palette=[[0, 0, 0], [255, 0, 0]])
out = tempfile.mkdtemp()
times = {k: {'cpu': [], 'wall': []} for k in ('read', 'report', 'write')}
def now():
    return time.process_time(), time.perf_counter()
def note(key, a, b):
    times[key]['cpu'].append(b[0] - a[0])
    times[key]['wall'].append(b[1] - a[1])
for i in range(n):
    path = f'{folder}/photo_{i:03d}.jpg'
    t0 = now()
    rgb = read_image_rgb(path)
    t1 = now()
    report = damage_report(mask, probs, seg.classes)
    t2 = now()
    infer.write_outputs(seg, DamageResult(path, mask, probs, report), rgb,
                        f'p{i}', out, 0.5)
    t3 = now()
    note('read', t0, t1)
    note('report', t1, t2)
    note('write', t2, t3)
print(json.dumps({f'{kind} {k}': round(statistics.median(v[kind]) * 1000, 1)
                  for k, v in times.items() for kind in ('cpu', 'wall')}))
'''


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repo', required=True,
                   help='a checkout of 6b3bb78 (the issue\'s main)')
    p.add_argument('--photos', type=int, default=8)
    p.add_argument('--size', default='4032x3024')
    p.add_argument('--out-dir', default=osp.join(REPO, 'work_dirs',
                                                 'benchmarks'))
    args = p.parse_args(argv)
    if not osp.isfile(osp.join(args.repo, 'tools', 'infer.py')):
        print(f'{args.repo}: not a checkout with tools/infer.py',
              file=sys.stderr)
        return 2
    from cardamage_mmseg.core.upsample import upsample_to_mask
    width, height = (int(v) for v in args.size.split('x'))
    with tempfile.TemporaryDirectory() as tmp:
        make_photos(tmp, args.photos, (width, height))
        up = upsample_to_mask(null_log_probs(384, 512), height, width,
                              full_probs=True)
        np.save(osp.join(tmp, 'mask.npy'), up['mask'])
        np.save(osp.join(tmp, 'probs.npy'), up['probs'])
        res = subprocess.run(
            [sys.executable, '-c', TIMER, osp.abspath(args.repo), tmp,
             str(args.photos)], capture_output=True, text=True)
    if res.returncode:
        print(res.stderr[-3000:], file=sys.stderr)
        return 1
    ms = json.loads(res.stdout.strip().splitlines()[-1])
    for kind in ('cpu', 'wall'):
        ms[f'{kind} total'] = round(sum(
            ms[f'{kind} {k}'] for k in ('read', 'report', 'write')), 1)
    print('serial path of the issue (ms per photo):', ms)
    save_report(dict(repo=osp.abspath(args.repo), photos=args.photos,
                     size=args.size, damage_share=float(up['mask'].mean()),
                     ms=ms), args.out_dir, 'serial_baseline', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
