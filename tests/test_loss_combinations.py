"""Loss combinations: one source (configs/_base_/losses/), which the
combination configs inherit and --loss reads; they apply to every head, and
a few training steps on real sample images decrease each of them."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401
from cardamage_mmseg.cli.config import (apply_loss_preset, loss_preset,
                                        loss_preset_names)
from cardamage_mmseg.utils.config import ConfigError
from conftest import REPO

init_default_scope('mmseg')
COMBOS = ['ce-dice', 'dice-focal', 'ce-lovasz', 'ce-dice-iou']


def test_presets_are_the_loss_config_files():
    assert loss_preset_names() == sorted(['ce', 'focal'] + COMBOS)
    with pytest.raises(ConfigError, match='unknown loss combination'):
        loss_preset('nope')


@pytest.mark.parametrize('combo', COMBOS)
def test_combination_config_inherits_its_loss_file(combo):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', f'segformer_b3_cardamage_{combo}.py'))
    losses = cfg.model.decode_head.loss_decode
    assert losses == loss_preset(combo)
    assert len(losses) == len(combo.split('-'))
    # everything else is the plain b3 config's
    plain = Config.fromfile(osp.join(REPO, 'configs',
                                     'segformer_b3_cardamage.py'))
    plain.model.decode_head.loss_decode = losses
    assert cfg.model == plain.model


def test_preset_applies_to_decode_and_auxiliary_heads():
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'upernet_swin-t_cardamage.py'))
    apply_loss_preset(cfg, 'ce-lovasz')
    main = cfg.model.decode_head.loss_decode
    aux = cfg.model.auxiliary_head.loss_decode
    assert [l['loss_name'] for l in main] == ['loss_ce', 'loss_lovasz']
    assert [l['loss_weight'] for l in aux] == pytest.approx([0.4, 0.4])


def test_preset_refused_for_mask2former():
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'mask2former_swin-t_cardamage.py'),
                          import_custom_modules=False)
    with pytest.raises(ConfigError, match='set-based'):
        apply_loss_preset(cfg, 'ce-dice')


@pytest.fixture(scope='module')
def real_batch(demo_converted):
    from mmseg.registry import DATASETS
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='CheckSegSample'),
        dict(type='Resize', scale=(96, 96), keep_ratio=False),
        dict(type='PackSegInputs')
    ]
    ds = DATASETS.build(dict(
        type='CarDamageDataset', data_root=demo_converted,
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=pipeline))
    items = [ds[i] for i in range(4)]
    return dict(inputs=[it['inputs'] for it in items],
                data_samples=[it['data_samples'] for it in items])


@pytest.mark.parametrize('combo', ['ce'] + COMBOS)
def test_training_steps_decrease_the_loss(combo, real_batch):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'segformer_b0_cardamage.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = None
    cfg.model.data_preprocessor.size_divisor = 32
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    apply_loss_preset(cfg, combo)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = model.data_preprocessor(real_batch, training=True)
    totals = []
    for _ in range(12):
        losses = model.loss(data['inputs'], data['data_samples'])
        names = {k for k in losses if k.startswith('decode.loss_')}
        expected = {f'decode.{l["loss_name"]}' for l in loss_preset(combo)}
        assert names == expected  # every term logged under its own name
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(total.item())
    assert all(torch.isfinite(torch.tensor(totals)))
    assert sum(totals[-3:]) / 3 < 0.9 * sum(totals[:3]) / 3, totals
