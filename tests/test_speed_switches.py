"""The speed switches give the stock outputs (CPU, so CI guards them)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401
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


# ----------------------------------------------------------------------
# --amp / --compile / --channels-last and the fused optimizer
def _cfg(name='segformer_b0_cardamage.py'):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_speed_settings_on_the_cpu_refuse_what_cannot_run():
    from cardamage_mmseg.cli.speed import apply_speed_settings
    if torch.cuda.is_available():
        pytest.skip('CPU behaviour')
    with pytest.raises(ValueError, match='needs a GPU'):
        apply_speed_settings(_cfg(), amp='auto')
    with pytest.raises(ValueError, match='bf16 only'):
        apply_speed_settings(_cfg(), amp='fp16', training=False)
    cfg = apply_speed_settings(_cfg(), amp='auto', compile=True,
                               channels_last=True, training=False)
    assert cfg.test_cfg == dict(type='AmpTestLoop', dtype='bf16')
    assert cfg.val_cfg.type == 'ValLoop'  # testing leaves validation alone
    types = [h['type'] for h in cfg.custom_hooks]
    assert types.count('CompileNetworkHook') == 1
    assert types.count('ChannelsLastHook') == 1
    assert 'RNGStateHook' in types  # the base hooks are kept
    assert 'pin_memory' not in cfg.train_dataloader


def test_speed_settings_for_gpu_training(monkeypatch):
    from cardamage_mmseg.cli.speed import apply_speed_settings
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: True)
    cfg = _cfg()
    cfg.compile = dict(backend='eager')
    cfg = apply_speed_settings(cfg, amp='auto', compile=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'  # the rest is kept
    assert cfg.val_cfg == dict(type='AmpValLoop', dtype='bf16')
    # the options go to the hook, and mmengine's own compile is off
    assert cfg.compile is None
    [hook] = [h for h in cfg.custom_hooks if h['type'] == 'CompileNetworkHook']
    assert hook['compile_cfg'] == dict(backend='eager')
    assert cfg.train_dataloader.pin_memory is True
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: False)
    assert apply_speed_settings(_cfg(), amp='auto').optim_wrapper.dtype \
        == 'float16'
    with pytest.raises(ValueError, match='no bfloat16'):
        apply_speed_settings(_cfg(), amp='bf16')
    cfg = _cfg()
    cfg.optim_wrapper.type = 'ApexOptimWrapper'
    with pytest.raises(ValueError, match='ApexOptimWrapper'):
        apply_speed_settings(cfg, amp='auto')


def _tiny_segformer():
    from mmengine.model.utils import revert_sync_batchnorm
    cfg = _cfg()
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model.eval()


def _predict(model, images):
    from mmseg.structures import SegDataSample
    samples = []
    for img in images:
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=img.shape[1:], ori_shape=img.shape[1:],
                            pad_shape=img.shape[1:]))
        samples.append(s)
    data = model.data_preprocessor(
        dict(inputs=[i.clone() for i in images], data_samples=samples), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    return data['inputs'], torch.stack([o.seg_logits.data for o in out])


@pytest.mark.parametrize('name', ['segformer_b0_cardamage.py',
                                  'deeplabv3_mobilevit-s_cardamage.py'])
def test_channels_last_gives_the_stock_outputs(name):
    from mmengine.model.utils import revert_sync_batchnorm

    from cardamage_mmseg.engine import to_channels_last
    cfg = _cfg(name)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    images = [torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)
              for _ in range(2)]
    _, ref = _predict(model, images)
    to_channels_last(model)
    to_channels_last(model)  # idempotent: one input hook
    inputs, fast = _predict(model, images)
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    convs = [m.weight for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(
        w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert torch.allclose(ref, fast, atol=1e-4, rtol=1e-4)


def test_compile_network_keeps_outputs_and_checkpoint_keys():
    from cardamage_mmseg.engine import compile_network
    model = _tiny_segformer()
    images = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)]
    _, ref = _predict(model, images)
    keys = list(model.state_dict())
    compile_network(model, backend='eager')
    assert list(model.state_dict()) == keys  # no _orig_mod. prefixes
    _, out = _predict(model, images)
    assert torch.allclose(ref, out, atol=1e-5)
    with pytest.raises(ValueError, match='none of'):
        compile_network(torch.nn.Linear(2, 2))


def test_bf16_inference_is_close_to_fp32():
    model = _tiny_segformer()
    images = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)]
    _, ref = _predict(model, images)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, low = _predict(model, images)
    p_ref, p_low = ref.softmax(1), low.float().softmax(1)
    assert (p_ref - p_low).abs().max() < 0.05
    agree = (p_ref.argmax(1) == p_low.argmax(1)).float().mean()
    assert agree > 0.97


def test_adamw_configs_use_the_fused_kernel():
    for name in ('segformer_b0_cardamage.py', 'segformer_b3_cardamage.py',
                 'upernet_swin-t_cardamage.py', 'dpt_vit-b16_cardamage.py',
                 'deeplabv3_mobilevit-s_cardamage.py',
                 'mask2former_swin-t_cardamage.py',
                 'segformer_b0_cardamage_demo.py'):
        assert _cfg(name).optim_wrapper.optimizer.get('fused') is True, name


def test_fused_adamw_takes_the_same_steps():
    params = {}
    for fused in (False, True):
        model = _tiny_segformer().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3,
                                weight_decay=0.01, fused=fused)
        torch.manual_seed(1)
        for _ in range(3):
            x = torch.randn(2, 3, 64, 64)
            loss = model._forward(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        params[fused] = [p.detach().clone() for p in model.parameters()]
    # Adam normalises each gradient, so near-zero gradients turn rounding
    # into up to ~1% of a step; a wrong kernel (no decay, no bias
    # correction) would be off by whole steps (lr * 3 = 3e-3)
    for a, b in zip(params[False], params[True]):
        assert torch.allclose(a, b, atol=0.02 * 1e-3 * 3, rtol=0)


@pytest.mark.slow  # 4 tool processes, torch.compile: 40-65 s
def test_tools_with_the_speed_switches(members, tmp_path):
    """train.py --compile; test.py --amp --channels-last --compile (AmpTestLoop
    and both hooks run); the metrics stay those of the fp32 run."""
    import json
    from conftest import run_tool
    cfg, ckpt = members['b0']
    work = str(tmp_path / 'train')
    res = run_tool('tools/train.py', cfg, '--work-dir', work, '--compile',
                   '--cfg-options', 'compile.backend=eager',
                   'train_cfg.max_iters=1',
                   'default_hooks.checkpoint.interval=1')
    assert res.returncode == 0, res.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'iter_1.pth'))
    if torch.cuda.is_available():
        return
    res = run_tool('tools/train.py', cfg, '--work-dir', work, '--amp')
    assert res.returncode != 0 and 'needs a GPU' in res.stderr

    metrics = {}
    for name, extra in (('fp32', []),
                        ('fast', ['--amp', 'bf16', '--channels-last',
                                  '--compile', '--cfg-options',
                                  'compile.backend=eager'])):
        out = str(tmp_path / name)
        res = run_tool('tools/test.py', cfg, ckpt, '--work-dir', out, *extra)
        assert res.returncode == 0, res.stderr[-3000:]
        [path] = [osp.join(r, f) for r, _, fs in __import__('os').walk(out)
                  for f in fs if f.endswith('.json')]
        metrics[name] = json.load(open(path))
    assert abs(metrics['fp32']['mIoU'] - metrics['fast']['mIoU']) < 2.0
    assert abs(metrics['fp32']['aAcc'] - metrics['fast']['aAcc']) < 1.0


def test_damage_segmenter_speed_switches(members):
    import numpy as np

    from cardamage_mmseg.apis import DamageSegmenter
    from conftest import DEMO
    cfg, ckpt = members['b0']
    path = osp.join(DEMO, 'val', '1.jpg')
    [ref] = DamageSegmenter(cfg, ckpt)(path)
    [fast] = DamageSegmenter(cfg, ckpt, amp='bf16', channels_last=True)(path)
    assert fast.probs.dtype == np.float32
    assert np.abs(ref.probs - fast.probs).max() < 0.05
    assert (ref.mask == fast.mask).mean() > 0.97
    with pytest.raises(ValueError, match='GPU|CUDA'):
        DamageSegmenter(cfg, ckpt, amp='fp16')


def test_channels_last_training_step_gives_the_same_loss_and_gradients():
    import copy

    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from cardamage_mmseg.engine import to_channels_last
    stock = _tiny_segformer().train()
    fast = to_channels_last(copy.deepcopy(stock))
    results = []
    for model in (stock, fast):
        g = torch.Generator().manual_seed(0)
        samples = []
        for _ in range(2):
            s = SegDataSample(gt_sem_seg=PixelData(
                data=torch.randint(0, 2, (1, 64, 64), generator=g)))
            s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64),
                                pad_shape=(64, 64)))
            samples.append(s)
        inputs = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8,
                                generator=g) for _ in range(2)]
        torch.manual_seed(0)  # same dropout masks
        data = model.data_preprocessor(
            dict(inputs=inputs, data_samples=samples), True)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in
                                        model.named_parameters()}))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-5)
    for name, grad in results[0][1].items():
        other = results[1][1][name]
        assert torch.allclose(grad, other, rtol=1e-3,
                              atol=1e-3 * grad.abs().max().item() + 1e-12)


def test_lr_scaling_rule_matches_the_batch_of_every_baseline():
    from cardamage_mmseg.zoo import BASELINES
    for name, baseline in BASELINES.items():
        cfg = _cfg(osp.basename(baseline.config))
        assert cfg.auto_scale_lr.enable is False, name
        # the lr was set for this batch: scaling starts from it
        assert cfg.auto_scale_lr.base_batch_size == \
            cfg.train_dataloader.batch_size, name
