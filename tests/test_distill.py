"""Distillation losses and DistillSegmentor: formulas, gradients, a frozen
teacher, the student-only checkpoint, and the standard tools end to end."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401
from cardamage_mmseg.models.losses import (ChannelWiseDistillLoss,
                                           FeatureMimicLoss,
                                           PixelKLDistillLoss)
from cardamage_mmseg.models.segmentors import (DistillSegmentor)
from conftest import REPO, run_tool, write_tiny_config

init_default_scope('mmseg')


def test_identical_logits_give_zero():
    x = torch.randn(2, 3, 5, 5)
    assert PixelKLDistillLoss()(x, x.clone()).item() == pytest.approx(
        0, abs=1e-7)
    assert ChannelWiseDistillLoss()(x, x.clone()).item() == pytest.approx(
        0, abs=1e-6)
    f = torch.randn(1, 4, 3, 3)
    assert FeatureMimicLoss(4, 4, 0)(f, f.clone()).item() == 0


def test_kl_by_hand_2_classes_2x2():
    # student logits 0 everywhere (p=.5/.5); teacher favours class 1 with
    # logit difference 2*ln3 at tau=2 -> p_t = (.25, .75) on three pixels
    tau = 2.0
    s = torch.zeros(1, 2, 2, 2)
    t = torch.zeros(1, 2, 2, 2)
    t[0, 1] = 2 * math.log(3)
    t[0, 1, 1, 1] = 0.0  # last pixel: teacher also .5/.5 -> KL 0
    valid = torch.tensor([[[True, True], [True, True]]])
    kl_px = .25 * math.log(.25 / .5) + .75 * math.log(.75 / .5)
    expected = tau**2 * (3 * kl_px + 0.0) / 4
    got = PixelKLDistillLoss(tau=tau)(s, t, valid)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # masking the zero-KL pixel out: mean over 3 valid pixels
    valid[0, 1, 1] = False
    got = PixelKLDistillLoss(tau=tau)(s, t, valid)
    assert got.item() == pytest.approx(tau**2 * kl_px, rel=1e-6)


def test_cwd_by_hand():
    # one channel, two positions: teacher softmax (e/(1+e), 1/(1+e)) at tau 1
    s = torch.zeros(1, 1, 1, 2)
    t = torch.tensor([[[[1.0, 0.0]]]])
    p = torch.softmax(t.flatten(), 0)
    expected = float((p * (p.log() - math.log(.5))).sum())
    got = ChannelWiseDistillLoss(tau=1.0, loss_weight=1.0)(s, t)
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('loss', [
    PixelKLDistillLoss(tau=2.0), ChannelWiseDistillLoss(tau=3.0),
    FeatureMimicLoss(3, 2, 0).double()
], ids=['kl', 'cwd', 'feature'])
def test_gradcheck(loss):
    torch.manual_seed(0)
    if isinstance(loss, FeatureMimicLoss):
        s = torch.randn(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
        t = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    else:
        s = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
        t = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (s, ))


def student_cfg():
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'segformer_b0_cardamage.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    return cfg.model


@pytest.fixture(scope='module')
def distiller(members):
    """b0 student under the tiny MobileViT teacher (other normalisation,
    other channels: exercises input conversion and the adapter)."""
    cfg, ckpt = members['mvit']
    return DistillSegmentor(
        student=student_cfg(),
        teacher=dict(config=cfg, checkpoint=ckpt),
        distill_losses=[
            dict(type='PixelKLDistillLoss', tau=2.0),
            dict(type='ChannelWiseDistillLoss', tau=4.0),
            dict(type='FeatureMimicLoss', student_channels=256,
                 teacher_channels=160, student_index=3, teacher_index=0),
        ])


def batch(model, n=2, size=64, training=True):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(1)
    inputs = [torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
              for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                        ori_shape=(size, size)))
        gt = torch.randint(0, 2, (1, size, size))
        gt[0, :4] = 255
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   training)


def test_teacher_frozen_outside_module_tree(distiller):
    teacher = distiller.teacher
    names = [n for n, _ in distiller.named_parameters()]
    assert not any(n.startswith('_teacher') or 'teacher' in n
                   for n in names)
    assert not any('teacher' in k for k in distiller.state_dict())
    distiller.train()
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())


def test_training_changes_student_not_teacher(distiller):
    teacher = distiller.teacher
    before_t = {k: v.clone() for k, v in teacher.state_dict().items()}
    before_s = {k: v.clone() for k, v in distiller.student.state_dict()
                .items()}
    opt = torch.optim.AdamW(distiller.parameters(), lr=1e-3)
    distiller.train()
    data = batch(distiller)
    for _ in range(3):
        losses = distiller.loss(data['inputs'], data['data_samples'])
        assert {'decode.loss_ce', 'distill.loss_kd', 'distill.loss_cwd',
                'distill.loss_feat3'} <= set(losses)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()
    after_t = teacher.state_dict()
    assert all(torch.equal(before_t[k], after_t[k]) for k in before_t)
    assert any('running_mean' in k for k in before_t)  # BN stats checked
    after_s = distiller.student.state_dict()
    assert any(not torch.equal(before_s[k], after_s[k]) for k in before_s)


def test_extracted_student_reproduces_predictions(distiller, tmp_path):
    from mmseg.registry import MODELS
    from mmengine.runner import save_checkpoint
    distiller.eval()
    path = str(tmp_path / 'distill.pth')
    save_checkpoint(distiller.state_dict(), path)
    out = str(tmp_path / 'student.pth')
    res = run_tool('tools/extract_student.py', path, out)
    assert res.returncode == 0, res.stderr
    ckpt = torch.load(out, weights_only=True)
    keys = ckpt['state_dict'].keys()
    assert not any('teacher' in k or 'adapter' in k or 'distill' in k
                   for k in keys)
    plain = MODELS.build(dict(student_cfg(),
                              data_preprocessor=dict(
                                  type='SegDataPreProcessor',
                                  mean=[123.675, 116.28, 103.53],
                                  std=[58.395, 57.12, 57.375],
                                  bgr_to_rgb=True)))
    missing, unexpected = plain.load_state_dict(ckpt['state_dict'],
                                                strict=False)
    assert not unexpected and all(k.startswith('data_preprocessor')
                                  for k in missing)
    plain.eval()
    data = batch(distiller, n=1, training=False)
    with torch.no_grad():
        a = distiller.predict(data['inputs'], data['data_samples'])
        b = plain.predict(data['inputs'], data['data_samples'])
    assert torch.equal(a[0].seg_logits.data, b[0].seg_logits.data)


def test_missing_teacher_checkpoint_fails_at_start(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        DistillSegmentor(student=student_cfg(), teacher=dict(
            config=osp.join(REPO, 'configs', 'segformer_b3_cardamage.py'),
            checkpoint=str(tmp_path / 'missing.pth')))


def test_teacher_with_other_labels_fails_at_start(members):
    cfg, ckpt = members['b0']
    student = student_cfg()
    student.decode_head.num_classes = 5
    with pytest.raises(ValueError, match='predicts 2 classes, the student 5'):
        DistillSegmentor(student=student,
                         teacher=dict(config=cfg, checkpoint=ckpt))


def test_distill_end_to_end_with_standard_tools(members, tmp_path,
                                                demo_converted):
    teacher_cfg, teacher_ckpt = members['b0']
    cfg = write_tiny_config(
        tmp_path, 'configs/distill_segformer_b3-b0_cardamage.py',
        demo_converted, iters=3,
        extra=f"model = dict(student=dict(data_preprocessor=dict("
        f"size=crop_size), backbone=dict(init_cfg=None)), teacher=dict("
        f"config={teacher_cfg!r}, checkpoint={teacher_ckpt!r}))\n")
    work = str(tmp_path / 'work')
    res = run_tool('tools/train.py', cfg, '--work-dir', work)
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert 'distill.loss_kd' in log and 'decode.loss_ce' in log
    student = str(tmp_path / 'student.pth')
    res = run_tool('tools/extract_student.py',
                   osp.join(work, 'iter_3.pth'), student)
    assert res.returncode == 0, res.stderr
    (tmp_path / 'plain').mkdir()
    plain = write_tiny_config(tmp_path / 'plain',
                              'configs/segformer_b0_cardamage.py',
                              demo_converted)
    res = run_tool('tools/test.py', plain, student, '--work-dir',
                   str(tmp_path / 'test'), '--cfg-options',
                   'model.backbone.init_cfg=None')
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.load(open(sorted(glob.glob(
        osp.join(str(tmp_path / 'test'), '*', '*.json')))[-1]))
    assert 'IoU.damage' in metrics


def test_speed_switches_reach_student_and_teacher(members):
    """--compile/--channels-last on a distillation config: both networks
    are switched, and the losses stay those of the stock model."""
    from cardamage_mmseg.engine import compile_network, to_channels_last
    cfg, ckpt = members['mvit']
    models = [DistillSegmentor(
        student=student_cfg(), teacher=dict(config=cfg, checkpoint=ckpt),
        distill_losses=[dict(type='PixelKLDistillLoss', tau=2.0)])
        for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    fast = models[1]
    to_channels_last(fast)
    compile_network(fast, backend='eager')
    for seg in (fast.student, fast.teacher):
        conv = next(m for m in seg.modules()
                    if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert seg.backbone._compiled_call_impl is not None
    losses = []
    for model in models:
        model.train()
        data = batch(model)
        torch.manual_seed(0)
        losses.append(model.loss(data['inputs'], data['data_samples']))
    for name, value in losses[0].items():
        if 'loss' in name:
            assert torch.allclose(value, losses[1][name], rtol=1e-4,
                                  atol=1e-6), name
