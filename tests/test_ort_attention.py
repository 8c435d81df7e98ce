"""SegFormer's attention as ONNX Runtime's one ``MultiHeadAttention`` node
(:mod:`cardamage_mmseg.models.ort_attention`): the same function of the
same weights, bound only inside the block and only in eval mode."""
import pytest
import torch

import cardamage_mmseg.register  # noqa: F401  (before mmseg's models)
from cardamage_mmseg.models.backbones.mit_sdpa import (
    MixVisionTransformerSDPA, SDPAEfficientMultiheadAttention)
from cardamage_mmseg.models.ort_attention import mha, ort_attention


def _backbone() -> MixVisionTransformerSDPA:
    """MiT-b0's stages (1, 2, 5, 8 heads; reductions 8, 4, 2, 1), one
    block each."""
    torch.manual_seed(0)
    return MixVisionTransformerSDPA(embed_dims=32, num_heads=[1, 2, 5, 8],
                                    num_layers=[1, 1, 1, 1]).eval()


def test_mha_is_scaled_dot_product_attention_per_head():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 30, 40), torch.randn(2, 7, 40), \
        torch.randn(2, 7, 40)
    out = mha(q, k, v, 4)
    # each head by hand: softmax(Q K^T / sqrt(d)) V on its 10 channels
    for h in range(4):
        part = slice(10 * h, 10 * (h + 1))
        scores = q[..., part] @ k[..., part].transpose(1, 2) / 10 ** 0.5
        expected = scores.softmax(-1) @ v[..., part]
        assert torch.allclose(out[..., part], expected, atol=1e-5)


def test_bound_attention_is_the_same_function():
    model = _backbone()
    x = torch.randn(2, 3, 75, 61)  # odd sizes, as a padded photo's
    with torch.no_grad():
        expected = model(x)
        with ort_attention(model) as bound:
            got = model(x)
        again = model(x)
    assert bound == 4
    for a, b, c in zip(expected, got, again):
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.equal(a, c)  # the own forward is back


def test_training_mode_keeps_its_own_attention():
    model = _backbone().train()
    with ort_attention(model) as bound:
        assert bound == 0
        assert all('forward' not in vars(m) for m in model.modules()
                   if isinstance(m, SDPAEfficientMultiheadAttention))


@pytest.mark.parametrize('standard_ops', [False, True])
def test_export_writes_the_attention_node_unless_standard_ops(
        members, val_photos, tmp_path, standard_ops):
    """The portable file has ONNX's ops only and the same outputs."""
    onnx = pytest.importorskip('onnx')
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.apis.export import export_onnx
    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.runtime import OnnxSegmenter
    cfg, ckpt = members['b0']
    seg = DamageSegmenter(cfg, ckpt)
    path = str(tmp_path / 'b0.onnx')
    meta = export_onnx(seg, cfg, ckpt, path,
                       read_image_rgb(str(val_photos / '1.jpg')),
                       standard_ops=standard_ops)
    ops = [(n.domain, n.op_type) for n in onnx.load(path).graph.node]
    attention = ops.count(('com.microsoft', 'MultiHeadAttention'))
    if standard_ops:
        assert attention == 0 and ('', 'Softmax') in ops
        assert meta['exporter']['contrib_ops'] == []
    else:  # MiT-b0: 2 + 2 + 2 + 2 blocks
        assert attention == 8 and ('', 'Softmax') not in ops
        assert meta['exporter']['contrib_ops'] == ['MultiHeadAttention']
    photo = str(val_photos / '31.jpg')  # another shape than the trace's
    [ours] = OnnxSegmenter(path)(photo)
    [theirs] = seg(photo)
    assert (ours.mask == theirs.mask).mean() >= 0.9999
    assert abs(ours.probs - theirs.probs).max() < 1e-3
