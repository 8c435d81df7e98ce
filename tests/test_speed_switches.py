"""The speed switches give the stock outputs (CPU, so CI guards them)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

import cardamage_mmseg  # noqa: F401
from conftest import REPO
from mmseg.registry import MODELS

init_default_scope('mmseg')
MIT_B0 = dict(type='MixVisionTransformer', in_channels=3, embed_dims=32,
              num_stages=4, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
              patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
              out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
              drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)


@pytest.mark.parametrize('shape', [(2, 3, 64, 64), (1, 3, 96, 72)])
def test_sdpa_backbone_matches_stock_outputs_and_gradients(shape):
    torch.manual_seed(0)
    stock = MODELS.build(MIT_B0)
    stock.init_weights()
    fast = MODELS.build(dict(MIT_B0, type='MixVisionTransformerSDPA'))
    # the official checkpoints' parameter names load unchanged (strict)
    fast.load_state_dict(copy.deepcopy(stock.state_dict()), strict=True)
    x = torch.randn(*shape, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    outs_a, outs_b = stock(x), fast(x2)
    for a, b in zip(outs_a, outs_b):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    sum(o.square().mean() for o in outs_a).backward()
    sum(o.square().mean() for o in outs_b).backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6, rtol=1e-4)


def test_segformer_configs_use_the_sdpa_backbone():
    from mmengine.config import Config
    for name in ('segformer_b0', 'segformer_b3', 'segformer_b5'):
        cfg = Config.fromfile(osp.join(REPO, 'configs',
                                       f'{name}_cardamage.py'))
        assert cfg.model.backbone.type == 'MixVisionTransformerSDPA'
