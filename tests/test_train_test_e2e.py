"""tools/train.py -> checkpoint -> tools/test.py (+ --show-dir, --out) on
the real sample, with SegFormer-b0 and pretrained loading switched off."""
import glob
import json
import os.path as osp

import numpy as np
from PIL import Image

from conftest import run_tool, write_tiny_config


def test_train_then_test_segformer_b0(tmp_path, demo_converted):
    cfg = write_tiny_config(tmp_path, 'configs/segformer_b0_cardamage.py',
                            demo_converted)
    work = str(tmp_path / 'work')
    res = run_tool('tools/train.py', cfg, '--work-dir', work,
                   '--cfg-options', 'model.backbone.init_cfg=None')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert 'Iter(train) [2/2]' in log and 'eta:' in log
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)

    show = str(tmp_path / 'show')
    out = str(tmp_path / 'pred')
    res = run_tool('tools/test.py', cfg, ckpt, '--work-dir', work,
                   '--show-dir', show, '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = sorted(glob.glob(osp.join(work, '*', '*.json')))
    result = json.load(open(metrics[-1]))
    assert 0.0 <= result['mIoU'] <= 100.0
    drawn = glob.glob(osp.join(show, 'vis_data', 'vis_image', '*.png'))
    assert len(drawn) == 8  # every val image, not every 50th
    img = np.array(Image.open(drawn[0]))
    assert img.shape == (256, 512, 3)  # ground truth | prediction
    masks = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(masks) == 8
    pred = np.array(Image.open(masks[0]))
    assert pred.shape == (256, 256) and set(np.unique(pred)) <= {0, 1}


def test_missing_checkpoint_and_config_are_named(tmp_path):
    res = run_tool('tools/test.py', 'configs/segformer_b0_cardamage.py',
                   str(tmp_path / 'nope.pth'))
    assert res.returncode != 0 and 'nope.pth not found' in res.stderr
    res = run_tool('tools/train.py', str(tmp_path / 'nope.py'))
    assert res.returncode != 0 and 'nope.py not found' in res.stderr
