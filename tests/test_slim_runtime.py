"""The slim install: a fresh virtual environment with the package and its
base requirements only (numpy, Pillow, OpenCV headless, onnxruntime, tqdm:
no torch, mmcv or mmseg) segments photos with an exported model, through
DamageSegmenter and tools/infer.py, with the PyTorch path's masks (slow:
pip installs from the registry or its cache)."""
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.cli.main import run
from conftest import DEMO, REPO, load_tool

pytest.importorskip('onnx')


@pytest.mark.slow
def test_slim_install_runs_an_exported_model(members, tmp_path):
    cfg, ckpt = members['b0']
    model = str(tmp_path / 'b0.onnx')
    photos = tmp_path / 'photos'
    photos.mkdir()
    for name in ('1.jpg', '4.jpg', '31.jpg'):
        Image.open(osp.join(DEMO, 'val', name)).convert('RGB').resize(
            (256, 192)).save(photos / name)
    assert run(load_tool('tools/export.py').main,
               [cfg, ckpt, '--out', model, '--verify-dir', str(photos)]) == 0
    # the PyTorch path's outputs, for comparison
    torch_out = str(tmp_path / 'torch_out')
    assert run(load_tool('tools/infer.py').main,
               [cfg, ckpt, str(photos), '--out', torch_out]) == 0

    venv = tmp_path / 'slim'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True,
                   timeout=300)
    py = str(venv / 'bin' / 'python')
    t0 = time.perf_counter()
    res = subprocess.run([py, '-m', 'pip', 'install', '-q', REPO],
                         capture_output=True, text=True, timeout=1200)
    install_s = time.perf_counter() - t0
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    freeze = subprocess.run([py, '-m', 'pip', 'freeze'], capture_output=True,
                            text=True, check=True).stdout.lower()
    for heavy in ('torch', 'mmcv', 'mmengine', 'mmsegmentation', 'onnx=='):
        assert not any(line.startswith(heavy) for line in
                       freeze.splitlines()), heavy
    assert 'onnxruntime==' in freeze and 'opencv-python-headless' in freeze

    # the installed package, from another folder (not the checkout)
    code = (
        'import sys, time, json\n'
        't = time.perf_counter()\n'
        'from cardamage_mmseg.apis import DamageSegmenter\n'
        f'seg = DamageSegmenter({model!r})\n'
        'cold = time.perf_counter() - t\n'
        f'[r] = seg({str(photos / "4.jpg")!r})\n'
        'heavy = [m for m in sys.modules if m.split(".")[0] in '
        '("torch", "mmcv", "mmengine", "mmseg")]\n'
        'print(json.dumps(dict(cold=cold, heavy=heavy, '
        'share=r.report["damage_share"], shape=list(r.mask.shape))))\n'
        'try:\n'
        f'    DamageSegmenter({cfg!r}, {ckpt!r})\n'
        'except ValueError as err:\n'
        '    print("CONFIG:", err)\n')
    res = subprocess.run([py, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    info = json.loads(lines[0])
    assert info['heavy'] == [] and info['shape'] == [192, 256]
    assert 'needs the training install' in lines[1]
    print(f'\nslim install {install_s:.0f}s; cold start (import + '
          f'session) {info["cold"]:.2f}s')

    # tools/infer.py from the checkout, with the slim interpreter
    slim_out = str(tmp_path / 'slim_out')
    res = subprocess.run([py, osp.join(REPO, 'tools', 'infer.py'), model,
                          str(photos), '--out', slim_out],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=''))
    assert res.returncode == 0, res.stderr[-3000:]
    assert '3 image(s) segmented' in res.stdout
    with open(osp.join(slim_out, 'report.json')) as f:
        assert [r['status'] for r in json.load(f)] == ['ok'] * 3
    for name in ('1', '4', '31'):
        a = np.asarray(Image.open(osp.join(slim_out, 'masks', name + '.png')))
        b = np.asarray(Image.open(osp.join(torch_out, 'masks',
                                           name + '.png')))
        assert (a == b).mean() >= 0.9999
