"""HFSegmentor: a HuggingFace model (the study's DPT-hybrid) inside mmseg,
through the standard tools: trains with mmengine's runner, tests, infers,
joins the study's union ensemble, teaches a student; HF weights in with
init_cfg=dict(type='HFPretrained'). A tiny random DPT-hybrid, no
download."""
import glob
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401  (registers; shim first)

from conftest import load_tool, run_tool, write_ensemble_config, \
    write_tiny_config

transformers = pytest.importorskip('transformers')
init_default_scope('mmseg')

#: DPT-hybrid in miniature: BiT (3 stages, total stride 16) + a 4-layer
#: ViT; the same code paths as Intel/dpt-hybrid-midas
TINY_DPT_HYBRID = dict(
    model_type='dpt', is_hybrid=True, hidden_size=64, num_hidden_layers=4,
    num_attention_heads=4, intermediate_size=128, image_size=64,
    patch_size=16, backbone_out_indices=[0, 1, 2, 3],
    neck_hidden_sizes=[32, 64, 64, 64], fusion_hidden_size=32,
    reassemble_factors=[1, 1, 1, 0.5], backbone_featmap_shape=[1, 128, 4, 4],
    use_auxiliary_head=False,
    backbone_config=dict(
        model_type='bit', global_padding='same', layer_type='bottleneck',
        depths=[1, 1, 1], hidden_sizes=[32, 64, 128], embedding_size=16,
        num_groups=8, out_features=['stage1', 'stage2', 'stage3'],
        embedding_dynamic_padding=True))


def tiny_dpt_extra(init_cfg='None'):
    return (f"model = dict(hf_model=dict(config=dict(_delete_=True, "
            f"**{TINY_DPT_HYBRID!r}), init_cfg={init_cfg}))\n")


def last_metrics(work):
    return json.load(open(sorted(glob.glob(osp.join(work, '*',
                                                    '*.json')))[-1]))


@pytest.fixture(scope='module')
def dpt_hybrid(tmp_path_factory, demo_converted):
    """configs/dpt-hybrid_cardamage.py, tiny, trained 2 iterations on the
    real sample with tools/train.py."""
    folder = tmp_path_factory.mktemp('dpt_hybrid')
    cfg = write_tiny_config(folder, 'configs/dpt-hybrid_cardamage.py',
                            demo_converted, test_images=2,
                            extra=tiny_dpt_extra())
    work = str(folder / 'work')
    res = run_tool('tools/train.py', cfg, '--work-dir', work)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'decode.loss_ce' in res.stdout + res.stderr
    return cfg, osp.join(work, 'iter_2.pth')


def test_dpt_hybrid_tests_and_infers(dpt_hybrid, val_photos, tmp_path):
    cfg, ckpt = dpt_hybrid
    work = str(tmp_path / 'test')
    res = run_tool('tools/test.py', cfg, ckpt, '--work-dir', work,
                   '--show-dir', str(tmp_path / 'show'))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 0.0 <= last_metrics(work)['mIoU'] <= 100.0
    from cardamage_mmseg.cli.main import run
    out = str(tmp_path / 'infer')
    infer = load_tool('tools/infer.py')
    assert run(infer.main, [cfg, ckpt, str(val_photos), '--out', out]) == 0
    assert len(os.listdir(osp.join(out, 'masks'))) == 4
    report = json.load(open(osp.join(out, 'report.json')))
    assert [r['status'] for r in report] == ['ok'] * 4


@pytest.mark.slow
def test_dpt_hybrid_and_segformer_union_ensemble(dpt_hybrid, members,
                                                 tmp_path):
    """The study's best ensemble as a config here: DPT-hybrid OR
    SegFormer, through tools/test.py."""
    ens = write_ensemble_config(tmp_path / 'ens.py',
                                [dpt_hybrid, members['b0']], fusion='union')
    work = str(tmp_path / 'work')
    res = run_tool('tools/test.py', ens, '--work-dir', work)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'IoU.damage' in last_metrics(work)


@pytest.mark.slow
def test_dpt_hybrid_as_distillation_teacher(dpt_hybrid, tmp_path,
                                            demo_converted):
    teacher_cfg, teacher_ckpt = dpt_hybrid
    cfg = write_tiny_config(
        tmp_path, 'configs/distill_segformer_b3-b0_cardamage.py',
        demo_converted, iters=2,
        extra=f"model = dict(student=dict(data_preprocessor=dict("
        f"size=crop_size), backbone=dict(init_cfg=None)), teacher=dict("
        f"config={teacher_cfg!r}, checkpoint={teacher_ckpt!r}))\n")
    res = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'distill.loss_kd' in res.stdout + res.stderr


def test_hf_pretrained_weights_fill_the_wrapped_model(tmp_path):
    """init_cfg HFPretrained loads a HF checkpoint of another head (a
    depth model, as Intel/dpt-hybrid-midas is) into the segmentation
    model: the shared DPT backbone and neck are the checkpoint's, the
    segmentation head is new."""
    from mmseg.registry import MODELS
    torch.manual_seed(3)
    fields = dict(TINY_DPT_HYBRID)
    model_type = fields.pop('model_type')
    depth = transformers.DPTForDepthEstimation(
        transformers.AutoConfig.for_model(model_type, **fields))
    depth.save_pretrained(tmp_path / 'midas')
    seg = MODELS.build(dict(
        type='HFSegmentor',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        hf_model=dict(config=TINY_DPT_HYBRID, init_cfg=dict(
            type='HFPretrained', checkpoint=str(tmp_path / 'midas'))),
        decode_head=dict(num_classes=2)))
    before = {k: v.clone() for k, v in seg.state_dict().items()}
    seg.init_weights()
    ours = seg.backbone.model.state_dict()
    theirs = depth.state_dict()
    shared = [k for k in theirs if k.startswith(('dpt.', 'neck.'))]
    assert shared and all(torch.equal(ours[k], theirs[k]) for k in shared)
    changed = [k for k, v in seg.state_dict().items()
               if not torch.equal(v, before[k])]
    assert changed  # it did load something
    x = torch.randn(1, 3, 96, 128)  # not the config's 64x64: accepted
    with torch.no_grad():
        logits = seg.encode_decode(x, [dict(img_shape=(96, 128),
                                            ori_shape=(96, 128),
                                            pad_shape=(96, 128))])
    assert logits.shape == (1, 2, 96, 128)


def test_label_count_follows_the_head():
    from mmseg.registry import MODELS
    seg = MODELS.build(dict(
        type='HFSegmentor', data_preprocessor=dict(type='SegDataPreProcessor'),
        hf_model=dict(config=TINY_DPT_HYBRID), decode_head=dict(num_classes=5)))
    assert seg.backbone.model.config.num_labels == 5
    with pytest.raises(ValueError, match='must be a LogitsHead'):
        MODELS.build(dict(type='HFSegmentor', hf_model=dict(
            config=TINY_DPT_HYBRID), decode_head=dict(
                type='FCNHead', num_classes=2, in_channels=2, channels=2)))
