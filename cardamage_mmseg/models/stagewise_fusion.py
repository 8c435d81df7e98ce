"""SegFormer's head with its fusion convolution applied per stage, for
export.

Why this is ours: mmseg's ``SegformerHead`` projects the four stages to
``C`` channels (``g_i = convs[i](x_i)``, 1x1 conv + BN + ReLU), resizes
each to the first stage's size ``S``, concatenates them and fuses with one
1x1 convolution ``W = [W_0 .. W_3]`` ((4C) -> C), then BN + ReLU. A 1x1
convolution and a resize (bilinear, or any other mode of
``F.interpolate`` without antialiasing) are both linear and act on
different axes (channels; space), so they commute:

    W [up(g_0); ..; up(g_3)] = sum_i W_i up(g_i) = sum_i up(W_i g_i)

The right-hand side runs each ``W_i`` at stage ``i``'s own resolution
(1/4, 1/8, 1/16, 1/32 of the input) and needs no concatenation: the
fusion's multiply-adds drop from ``4 C^2 S`` to ``C^2 S (1 + 1/4 + 1/16 +
1/64)``, 2.9 of SegFormer-b0's 4.3 G per 512 x 512 image at ``C = 256``,
26 of b3's 39 G at ``C = 768``. The same weights give the same function
(float rounding aside: the sums run in another order, tested within
1e-5). The BatchNorm after the fusion is affine in eval mode,
``BN(y) = s * y + t``, so it folds into the per-stage maps too
(``W_i -> diag(s) W_i``, ``t`` the first stage's bias), and the first
stage's map is applied last: ONNX Runtime then runs its convolution, the
sum of the other stages and the ReLU as one kernel (b0 at batch 2: one
pass less over a (2, 256, 128, 128) map each for the BN and the ReLU).
The pieces are in :mod:`.decode_heads.stage_fold`. HF's head
(:class:`~.decode_heads.SegformerHFHead`, the study's models) fuses per
stage in its own eval forward; here it does so in training mode too.
:func:`stagewise_fusion` binds these forwards, for the
duration of an export, to every such head in a model, as
:mod:`.shape_generic` does for shapes; training and the PyTorch path keep
mmseg's forwards and weights.
"""
from typing import ContextManager, List

from mmseg.models.decode_heads import SegformerHead
from torch import Tensor, nn

from .bound_forwards import ForwardTable, bind_forwards
from .decode_heads.segformer_hf_head import SegformerHFHead
from .decode_heads.stage_fold import fold_norm, sum_stages


def _stagewise_forward(self: SegformerHead, inputs: List[Tensor]) -> Tensor:
    """``SegformerHead.forward`` with the fusion conv per stage (module
    docstring)."""
    inputs = self._transform_inputs(inputs)
    fusion = self.fusion_conv
    weights, bias, norm = fold_norm(
        fusion.conv.weight.split(self.channels, dim=1), fusion.conv.bias,
        fusion.norm if fusion.with_norm else None)
    parts = [nn.functional.conv2d(conv(x), weight)
             for x, conv, weight in zip(inputs[1:], self.convs[1:],
                                        weights[1:])]
    first = nn.functional.conv2d(self.convs[0](inputs[0]), weights[0], bias)
    out = sum_stages(parts, first, inputs[0].shape[2:],
                     self.interpolate_mode, self.align_corners)
    if norm is not None:
        out = norm(out)
    if fusion.with_activation:
        out = fusion.activate(out)
    return self.cls_seg(out)


def _applies(head: SegformerHead) -> bool:
    """The fusion is the plain 1x1 conv (+ norm + act) this rewrite
    assumes (mmseg's default ``ConvModule`` order, no padding, groups or
    stride). Every ``interpolate_mode`` qualifies: resizing without
    antialiasing mixes each channel's pixels alone, linearly."""
    fusion = getattr(head, 'fusion_conv', None)
    conv = getattr(fusion, 'conv', None)
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
            and conv.groups == 1 and conv.stride == (1, 1)
            and conv.padding == (0, 0)
            and tuple(fusion.order) == ('conv', 'norm', 'act')
            and conv.in_channels == head.channels * len(head.convs))


#: head type -> its per-stage forward, and which heads of it qualify
FORWARDS: ForwardTable = {
    SegformerHead: (_stagewise_forward, _applies),
    # its eval forward already is per stage; in training mode too here
    SegformerHFHead: (SegformerHFHead.forward_per_stage, None),
}


def stagewise_fusion(model: nn.Module) -> ContextManager[int]:
    """Within the block, every ``SegformerHead`` and ``SegformerHFHead``
    in ``model`` (and not a subclass, whose forward may differ) fuses per
    stage (module docstring); yields how many were bound. Their own
    forwards come back afterwards."""
    return bind_forwards(model, FORWARDS)
