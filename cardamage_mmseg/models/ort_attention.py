"""SegFormer's attention as one ONNX Runtime ``MultiHeadAttention`` node,
for export.

Why this is ours: exported as it runs in PyTorch, each MiT attention
(:class:`~.backbones.mit_sdpa.SDPAEfficientMultiheadAttention`) is a chain
of reshapes, transposes, a scaling, ``MatMul``, ``Softmax`` and ``MatMul``;
ONNX Runtime then writes the whole (N, heads, L_q, L_kv) score tensor and
reads it back twice (SegFormer-b0's first stage: 16384 queries x 256 keys
per image). Its contrib op ``com.microsoft.MultiHeadAttention`` computes

    out = concat_h softmax(Q_h K_h^T / sqrt(d)) V_h,   d = C / heads

from the (N, L, C) projections in one kernel. :func:`ort_attention` binds,
for the duration of an export, a forward to every such module that
computes the same projections and calls :func:`mha` (a PyTorch custom op
whose eager form is ``F.scaled_dot_product_attention``); :func:`translation`
is the exporter's rule that writes it as that node. The same weights give
the same function (float rounding aside, tested). A file with the node
runs in ONNX Runtime (which the runtime is) but not in every ONNX runtime:
``tools/export.py --standard-ops`` keeps the portable form.
"""
from typing import Any, Callable, ContextManager, Dict, Optional

import torch
import torch.nn.functional as F
from mmseg.models.utils import nchw_to_nlc, nlc_to_nchw
from torch import Tensor, nn

from .backbones.mit_sdpa import SDPAEfficientMultiheadAttention
from .bound_forwards import ForwardTable, bind_forwards

#: the contrib op's domain and version (onnxruntime >= 1.17 runs it)
DOMAIN, DOMAIN_VERSION = 'com.microsoft', 1


@torch.library.custom_op('cardamage::mha', mutates_args=())
def mha(query: Tensor, key: Tensor, value: Tensor, heads: int) -> Tensor:
    """Multi-head attention of (N, L, C) projections, (N, L_q, C) out
    (module docstring): what the exported node computes."""
    batch, length, channels = query.shape

    def split(t: Tensor) -> Tensor:  # (N, L, C) -> (N, heads, L, C/heads)
        return t.reshape(batch, -1, heads, channels // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(split(query), split(key),
                                         split(value))
    return out.transpose(1, 2).reshape(batch, length, channels)


@mha.register_fake
def _mha_shape(query: Tensor, key: Tensor, value: Tensor,
               heads: int) -> Tensor:
    return torch.empty_like(query)


def _ort_forward(self: SDPAEfficientMultiheadAttention, x: Tensor,
                 hw_shape, identity: Optional[Tensor] = None) -> Tensor:
    """The module's eval forward with the attention as :func:`mha`."""
    x_kv = x
    if self.sr_ratio > 1:
        x_kv = self.norm(nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape))))
    attn = self.attn
    bias = attn.in_proj_bias
    bq, bk, bv = (None, None, None) if bias is None else bias.chunk(3)
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    out = mha(F.linear(x, wq, bq), F.linear(x_kv, wk, bk),
              F.linear(x_kv, wv, bv), attn.num_heads)
    out = attn.out_proj(out)
    return (x if identity is None else identity) + \
        self.dropout_layer(self.proj_drop(out))


def _applies(module: SDPAEfficientMultiheadAttention) -> bool:
    """Eval mode (the node has no dropout) and heads that split the
    channels evenly."""
    attn = module.attn
    return not module.training and attn.embed_dim % attn.num_heads == 0


#: attention type -> its one-node forward, and which modules qualify
FORWARDS: ForwardTable = {
    SDPAEfficientMultiheadAttention: (_ort_forward, _applies),
}


def ort_attention(model: nn.Module) -> ContextManager[int]:
    """Within the block, every :class:`SDPAEfficientMultiheadAttention` of
    ``model`` in eval mode computes its attention with :func:`mha`
    (module docstring); yields how many were bound."""
    return bind_forwards(model, FORWARDS)


def translation() -> Dict[Any, Callable]:
    """``torch.onnx.export``'s ``custom_translation_table`` that writes
    :func:`mha` as ``com.microsoft.MultiHeadAttention`` (``onnxscript``
    is imported here, at export time only)."""
    import onnxscript
    from onnx.defs import OpSchema
    param = OpSchema.FormalParameter
    # the op is not in onnx's registry: its signature, as onnxruntime has it
    schema = OpSchema(
        'MultiHeadAttention', DOMAIN, DOMAIN_VERSION,
        inputs=[param('query', 'T'), param('key', 'T'), param('value', 'T')],
        outputs=[param('output', 'T')],
        type_constraints=[('T', ['tensor(float)'], 'float32')],
        attributes=[OpSchema.Attribute('num_heads', OpSchema.AttrType.INT,
                                       'heads', required=True)])
    node = onnxscript.values.Op(
        onnxscript.values.Opset(DOMAIN, DOMAIN_VERSION),
        'MultiHeadAttention', schema)

    def multi_head_attention(query, key, value, heads: int):
        return node(query, key, value, num_heads=heads)
    return {torch.ops.cardamage.mha.default: multi_head_attention}
