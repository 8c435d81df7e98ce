"""MixVisionTransformer whose attention runs through
``F.scaled_dot_product_attention``.

Why this is ours: mmseg's ``EfficientMultiheadAttention`` calls
``nn.MultiheadAttention`` asking for the attention weights, which rules out
PyTorch's fused (flash / memory-efficient) kernels. This variant computes
the same attention from the *same parameters* (``attn.in_proj_weight``,
``attn.in_proj_bias``, ``attn.out_proj``), so official MiT checkpoints load
unchanged, and outputs match the stock backbone (tests check it).
"""
import torch.nn.functional as F
from mmseg.models.backbones.mit import (EfficientMultiheadAttention,
                                        MixVisionTransformer)
from mmseg.models.utils import nchw_to_nlc, nlc_to_nchw
from mmseg.registry import MODELS


class SDPAEfficientMultiheadAttention(EfficientMultiheadAttention):
    """Same parameters and maths as the parent; fused attention kernel."""

    def forward(self, x, hw_shape, identity=None):
        x_q = x
        if self.sr_ratio > 1:
            x_kv = nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape)))
            x_kv = self.norm(x_kv)
        else:
            x_kv = x
        if identity is None:
            identity = x_q
        attn = self.attn
        batch, n_q, dims = x_q.shape
        heads = attn.num_heads
        w, b = attn.in_proj_weight, attn.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
        wq, wk, wv = w.chunk(3)
        q = F.linear(x_q, wq, bq).view(batch, n_q, heads, -1).transpose(1, 2)
        k = F.linear(x_kv, wk, bk).view(batch, -1, heads,
                                        dims // heads).transpose(1, 2)
        v = F.linear(x_kv, wv, bv).view(batch, -1, heads,
                                        dims // heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=attn.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, n_q, dims)
        out = attn.out_proj(out)
        return identity + self.dropout_layer(self.proj_drop(out))


@MODELS.register_module()
class MixVisionTransformerSDPA(MixVisionTransformer):
    """:class:`MixVisionTransformer` (SegFormer's MiT) with
    :class:`SDPAEfficientMultiheadAttention`; same arguments and weights."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for module in self.modules():
            if type(module) is EfficientMultiheadAttention:
                if not module.batch_first:
                    raise ValueError('MixVisionTransformerSDPA needs '
                                     'batch_first attention')
                module.__class__ = SDPAEfficientMultiheadAttention
