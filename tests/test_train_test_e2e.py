"""tools/train.py -> checkpoint -> tools/test.py (+ --show-dir, --out) on
the real sample, with SegFormer-b0 and pretrained loading switched off."""
import glob
import json
import os.path as osp
import shutil

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

    # --resume after the work dir moved: last_checkpoint holds the old
    # absolute path; the checkpoint beside it is found
    moved = str(tmp_path / 'moved')
    shutil.move(work, moved)
    res = run_tool('tools/train.py', cfg, '--work-dir', moved, '--resume',
                   '--cfg-options', 'model.backbone.init_cfg=None',
                   'train_cfg.max_iters=3')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert f'Load checkpoint from {moved}/iter_2.pth' in log, log[-3000:]
    assert 'resumed epoch: 0, iter: 2' in log and 'Iter(train) [3/3]' in log


def test_resume_with_nothing_to_resume_stops(tmp_path):
    """It trained from scratch with exit code 0 ("Auto resumed from the
    latest checkpoint None")."""
    res = run_tool('tools/train.py', 'configs/segformer_b0_cardamage.py',
                   '--work-dir', str(tmp_path), '--resume')
    assert res.returncode == 2, res.stderr[-3000:]
    assert 'nothing to resume in' in res.stderr


def test_missing_checkpoint_and_config_are_named(tmp_path):
    res = run_tool('tools/test.py', 'configs/segformer_b0_cardamage.py',
                   str(tmp_path / 'nope.pth'))
    assert res.returncode != 0 and 'nope.pth not found' in res.stderr
    res = run_tool('tools/train.py', str(tmp_path / 'nope.py'))
    assert res.returncode != 0 and 'nope.py not found' in res.stderr


def test_per_class_iou_metric_matches_hand_count():
    import torch
    from mmseg.registry import METRICS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    import cardamage_mmseg.register  # noqa: F401
    metric = METRICS.build(dict(type='PerClassIoUMetric'))
    metric.dataset_meta = dict(classes=('background', 'damage'))
    gt = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]])
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=gt[None])
    sample.pred_sem_seg = PixelData(data=pred[None])
    metric.process({}, [sample.to_dict()])
    out = metric.evaluate(1)
    # damage: gt 3 px, pred 3 valid px, intersection 2 -> union 4
    assert out['IoU.damage'] == 50.0
    # background: inter 3, union 5 (ignored pixel excluded)
    assert out['IoU.background'] == 60.0
    assert out['mIoU'] == 55.0
