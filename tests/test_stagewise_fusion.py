"""SegFormer's head fused per stage for export
(:mod:`cardamage_mmseg.models.stagewise_fusion`): the same function of the
same weights as mmseg's forward, bound only inside the block."""
import pytest
import torch

import cardamage_mmseg.register  # noqa: F401  (before mmseg's models)
from cardamage_mmseg.models.stagewise_fusion import stagewise_fusion
from mmseg.models.decode_heads import SegformerHead  # noqa: E402  isort:skip


def _head(in_channels, channels, **kw) -> SegformerHead:
    torch.manual_seed(0)
    head = SegformerHead(in_channels=in_channels, in_index=[0, 1, 2, 3],
                         channels=channels, num_classes=3,
                         norm_cfg=dict(type='BN'), align_corners=False,
                         **kw).eval()
    for m in head.modules():  # BN statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return head


def _hf_head(in_channels, channels):
    """HF's head (the study's models) with BN statistics and scale that
    are not the identity."""
    from cardamage_mmseg.models.decode_heads import SegformerHFHead
    torch.manual_seed(0)
    head = SegformerHFHead(in_channels=in_channels, in_index=[0, 1, 2, 3],
                           channels=channels, num_classes=2).eval()
    head.batch_norm.running_mean.normal_()
    head.batch_norm.running_var.uniform_(0.5, 2.0)
    head.batch_norm.weight.data.normal_()
    return head


def _calls(module):
    """A list that grows by one per forward of ``module``, and the hook."""
    calls = []
    return calls, module.register_forward_hook(lambda *args: calls.append(1))


def _features(in_channels, h=40, w=37, batch=2):
    # odd sizes: the stages do not halve evenly, as in a padded photo
    return [torch.randn(batch, c, -(-h // 2 ** i), -(-w // 2 ** i))
            for i, c in enumerate(in_channels)]


@pytest.mark.parametrize('in_channels,channels,mode', [
    ([32, 64, 160, 256], 256, 'bilinear'),    # SegFormer-b0's head
    ([64, 128, 320, 512], 96, 'bilinear'),    # b3's stages, fewer channels
    ([16, 16, 16, 16], 32, 'bicubic'),
])
def test_stagewise_head_is_the_same_function(in_channels, channels, mode):
    head = _head(in_channels, channels, interpolate_mode=mode)
    feats = _features(in_channels)
    with torch.no_grad():
        ref = head(feats)
        with stagewise_fusion(head) as bound:
            out = head(feats)
        after = head(feats)
    assert bound == 1
    assert out.shape == ref.shape == (2, 3, 40, 37)
    assert (out - ref).abs().max() < 1e-5 * max(1.0, ref.abs().max())
    assert torch.equal(after, ref)  # mmseg's forward is back
    assert 'forward' not in vars(head)


def test_stagewise_fusion_leaves_other_heads_alone():
    class OwnHead(SegformerHead):  # a subclass may compute otherwise
        pass

    torch.manual_seed(0)
    own = OwnHead(in_channels=[8, 8, 8, 8], in_index=[0, 1, 2, 3],
                  channels=8, num_classes=2, norm_cfg=dict(type='BN'))
    plain = _head([8, 8, 8, 8], 8)
    model = torch.nn.ModuleList([own, plain])
    with stagewise_fusion(model) as bound:
        assert bound == 1
        assert 'forward' in vars(plain) and 'forward' not in vars(own)
    assert 'forward' not in vars(plain)


def test_stagewise_head_skips_the_full_size_fusion_conv():
    """The point of the rewrite: the (4C) -> C convolution at the first
    stage's size does not run (its weights are used per stage)."""
    head = _head([32, 64, 160, 256], 64)
    calls, hook = _calls(head.fusion_conv.conv)
    feats = _features([32, 64, 160, 256])
    with torch.no_grad():
        head(feats)
        with stagewise_fusion(head):
            head(feats)
    hook.remove()
    assert len(calls) == 1  # mmseg's forward only


@pytest.mark.parametrize('in_channels,channels', [
    ([32, 64, 160, 256], 256), ([64, 128, 320, 512], 96)])
def test_stagewise_hf_head_is_the_same_function(in_channels, channels):
    """HF's head (the study's models): each stage's linear map and its
    slice of the fusion fold into one map; stages concatenated in
    reverse order, as HF does."""
    head = _hf_head(in_channels, channels)
    feats = _features(in_channels)
    with torch.no_grad():
        ref = head.forward_concat(feats)
        with stagewise_fusion(head) as bound:
            out = head(feats)
    assert bound == 1 and 'forward' not in vars(head)
    assert out.shape == ref.shape == (2, 2, 40, 37)
    assert (out - ref).abs().max() < 1e-5 * max(1.0, ref.abs().max())


def test_hf_head_eval_forward_is_per_stage():
    """HF's head runs per stage in eval mode (the full-size fusion
    convolution does not run) and as HF computes it in training mode;
    the same function either way."""
    in_channels = [32, 64, 160, 256]
    head = _hf_head(in_channels, 64)
    feats = _features(in_channels)
    calls, hook = _calls(head.linear_fuse)
    with torch.no_grad():
        out = head(feats)
        assert not calls
        ref = head.forward_concat(feats)
        assert len(calls) == 1
        assert (out - ref).abs().max() < 1e-5 * max(1.0, ref.abs().max())
        head.train()
        head(feats)
    hook.remove()
    assert len(calls) == 2


@pytest.mark.parametrize('hf', [False, True])
def test_eval_batch_norm_folds_into_the_stage_maps(hf):
    """In eval mode the BN after the fusion is affine and folds into the
    per-stage maps (it does not run); in training mode it normalises with
    the batch's statistics and runs as before."""
    in_channels = [32, 64, 160, 256]
    if hf:
        head = _hf_head(in_channels, 64)
        norm = head.batch_norm
    else:
        head = _head(in_channels, 64)
        norm = head.fusion_conv.norm
    feats = _features(in_channels)
    calls, hook = _calls(norm)
    # the reference: the head's own form (HF's, for HF's head)
    reference = head.forward_concat if hf else head
    with torch.no_grad():
        ref = reference(feats)
        with stagewise_fusion(head):
            out = head(feats)
        assert len(calls) == 1  # the reference's only
        assert (out - ref).abs().max() < 1e-5 * max(1.0, ref.abs().max())
        head.train()
        for m in head.modules():  # batch statistics, without dropout
            if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
                m.eval()
        ref = reference(feats)
        with stagewise_fusion(head):
            out = head(feats)
    hook.remove()
    assert len(calls) == 3
    assert (out - ref).abs().max() < 1e-4 * max(1.0, ref.abs().max())
