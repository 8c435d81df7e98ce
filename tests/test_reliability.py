"""Reliability: 2-process CPU training/testing (gloo), SIGKILL + --resume
continues the same loss curve, a killed conversion finishes cleanly."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import (DEMO, REPO, run_tool, write_ensemble_config,
                      write_tiny_config)

NO_RANDOM_LAYERS = ('model = dict(backbone=dict(init_cfg=None, '
                    'drop_path_rate=0.0), decode_head=dict('
                    'dropout_ratio=0.0))\n')


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def torchrun(*args, nproc=2, timeout=600):
    """Run tools/dist_*.sh with 2 CPU processes on a fresh loopback port."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PORT=str(free_port()), MASTER_ADDR='127.0.0.1')
    return subprocess.run(['bash', *args[:1], *args[1:]], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def last_metrics(work):
    return json.load(open(sorted(glob.glob(osp.join(work, '*',
                                                    '*.json')))[-1]))


@pytest.mark.slow
def test_two_process_gloo_train_and_test(tmp_path, demo_converted):
    cfg = write_tiny_config(
        tmp_path, 'configs/segformer_b0_cardamage.py', demo_converted,
        iters=3, extra=NO_RANDOM_LAYERS +
        "custom_hooks = [dict(type='SampleTraceHook')]\n")
    work = str(tmp_path / 'work')
    res = torchrun('tools/dist_train.sh', cfg, '2', '--work-dir', work)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    traces = [open(osp.join(work, f'sample_trace_rank{r}.txt')).read()
              .split('\n') for r in (0, 1)]
    seen = [{line.split('\t')[1] for line in t if line} for t in traces]
    assert all(len(s) >= 2 for s in seen)
    assert seen[0] != seen[1]  # DistributedSampler split the data
    ckpt = osp.join(work, 'iter_3.pth')
    one = run_tool('tools/test.py', cfg, ckpt, '--work-dir',
                   str(tmp_path / 't1'))
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun('tools/dist_test.sh', cfg, ckpt, '2', '--work-dir',
                   str(tmp_path / 't2'))
    assert two.returncode == 0, (two.stdout + two.stderr)[-3000:]
    m1, m2 = last_metrics(str(tmp_path / 't1')), last_metrics(
        str(tmp_path / 't2'))
    assert m1['mIoU'] == pytest.approx(m2['mIoU'], abs=0.01)
    assert m1['IoU.damage'] == pytest.approx(m2['IoU.damage'], abs=0.01)


def losses_by_iter(work):
    out = {}
    for path in glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')):
        for line in open(path):
            row = json.loads(line)
            if 'loss' in row and 'iter' in row:
                out[row['iter']] = row['loss']
    return out


@pytest.mark.slow  # two training processes, one killed: 50-65 s
def test_sigkill_then_resume_continues_the_same_curve(tmp_path,
                                                      demo_converted):
    iters = 8
    extra = ('model = dict(backbone=dict(init_cfg=None))\n'
             'default_hooks = dict(logger=dict(interval=1), checkpoint=dict('
             'interval=2, max_keep_ckpts=10, save_best=None))\n'
             'randomness = dict(seed=7, deterministic=True)\n')
    cfg = write_tiny_config(tmp_path, 'configs/segformer_b0_cardamage.py',
                            demo_converted, iters=iters, extra=extra)
    full = str(tmp_path / 'full')
    res = run_tool('tools/train.py', cfg, '--work-dir', full)
    assert res.returncode == 0, res.stderr[-2000:]
    reference = losses_by_iter(full)
    assert sorted(reference) == list(range(1, iters + 1))

    crash = str(tmp_path / 'crash')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', cfg,
                             '--work-dir', crash], cwd=REPO,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.exists(osp.join(crash, 'iter_4.pth')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    time.sleep(0.5)  # let the file be complete: it is renamed into place
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(int(p.split('_')[-1][:-4])
                  for p in glob.glob(osp.join(crash, 'iter_*.pth')))
    assert done and done[-1] < iters  # really interrupted
    res = run_tool('tools/train.py', cfg, '--work-dir', crash, '--resume')
    assert res.returncode == 0, res.stderr[-2000:]
    assert f'resumed epoch: 0, iter: {done[-1]}' in res.stdout + res.stderr
    resumed = losses_by_iter(crash)
    for it in range(done[-1] + 1, iters + 1):
        assert resumed[it] == pytest.approx(reference[it], rel=1e-4,
                                            abs=1e-5), it
    # the LR schedule continued too
    assert osp.exists(osp.join(crash, f'iter_{iters}.pth'))


def test_killed_conversion_finishes_cleanly(tmp_path):
    out = str(tmp_path / 'conv')
    src = osp.join(DEMO, 'train')
    cmd = [sys.executable, 'tools/dataset_converters/via_to_mmseg.py',
           osp.join(src, 'via_region_data.json'), '--out', out, '--split',
           'train', '--size', '0', '--nproc', '1']
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ann = osp.join(out, 'ann_dir', 'train')
    deadline = time.time() + 120
    while not (osp.isdir(ann) and len(os.listdir(ann)) >= 5):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {n: os.path.getmtime(osp.join(ann, n))
                for n in os.listdir(ann) if not n.startswith('.')}
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert 'already present: ' in res.stdout
    for folder, suffix in (('img_dir', '.jpg'), ('ann_dir', '.png')):
        names = os.listdir(osp.join(out, folder, 'train'))
        assert not [n for n in names if n.startswith('.tmp-')]
        assert len([n for n in names if n.endswith(suffix)]) == 62
        for name in names:  # every file decodes completely
            with Image.open(osp.join(out, folder, 'train', name)) as im:
                im.load()
    for name, mtime in finished.items():  # finished work not redone
        stem = name[:-4]
        img_done = osp.isfile(osp.join(out, 'img_dir', 'train',
                                       stem + '.jpg'))
        if img_done:
            assert os.path.getmtime(osp.join(ann, name)) == mtime
    mask = np.array(Image.open(osp.join(ann, sorted(finished)[0])))
    assert mask.ndim == 2


@pytest.mark.slow
def test_ensemble_and_distill_under_two_gloo_processes(tmp_path, members,
                                                       demo_converted):
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    ens = write_ensemble_config(tmp_path / 'ens.py', [(c0, k0), (c1, k1)])
    one = run_tool('tools/test.py', str(ens), '--work-dir',
                   str(tmp_path / 'e1'))
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun('tools/dist_test.sh', str(ens), '', '2', '--work-dir',
                   str(tmp_path / 'e2'))
    assert two.returncode == 0, (two.stdout + two.stderr)[-3000:]
    assert last_metrics(str(tmp_path / 'e1'))['mIoU'] == pytest.approx(
        last_metrics(str(tmp_path / 'e2'))['mIoU'], abs=0.01)
    # distillation: the teacher in every rank, frozen
    cfg = write_tiny_config(
        tmp_path, 'configs/distill_segformer_b3-b0_cardamage.py',
        demo_converted, iters=2,
        extra=f"model = dict(student=dict(data_preprocessor=dict("
        f"size=crop_size), backbone=dict(init_cfg=None)), teacher=dict("
        f"config={c0!r}, checkpoint={k0!r}))\n")
    work = str(tmp_path / 'dist_kd')
    res = torchrun('tools/dist_train.sh', cfg, '2', '--work-dir', work)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert 'distill.loss_kd' in res.stdout + res.stderr
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


@pytest.mark.slow
def test_sharded_inference_under_two_processes(tmp_path, members):
    """tools/dist_infer.sh: each rank segments every second photo, rank 0
    writes one report in input order, equal to a one-process run."""
    cfg, ckpt = members['b0']
    photos = tmp_path / 'photos'
    photos.mkdir()
    val = osp.join(DEMO, 'val')
    names = sorted(f for f in os.listdir(val) if f.endswith('.jpg'))[:5]
    for name in names:
        Image.open(osp.join(val, name)).convert('RGB').resize(
            (200, 150)).save(photos / name)
    (photos / 'broken.jpg').write_bytes(b'no')
    res = torchrun('tools/dist_infer.sh', cfg, ckpt, '2', str(photos),
                   '--out', str(tmp_path / 'two'), '--writers', '1',
                   '--workers', '0')
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    one = run_tool('tools/infer.py', cfg, ckpt, str(photos), '--out',
                   str(tmp_path / 'one'))
    assert one.returncode == 0, one.stderr[-2000:]
    two_rows = json.load(open(tmp_path / 'two' / 'report.json'))
    one_rows = json.load(open(tmp_path / 'one' / 'report.json'))
    assert [r['file'] for r in two_rows] == sorted(
        str(photos / n) for n in names + ['broken.jpg'])
    assert [(r['status'], r.get('damage_share')) for r in two_rows] == \
        [(r['status'], r.get('damage_share')) for r in one_rows]
    assert 'rank 1 of 2' in res.stdout
