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
1e-5). HF's head (:class:`~.decode_heads.SegformerHFHead`, the study's
models) has no activation between a stage's linear map ``L_i x + b_i``
and the fusion, so the two fold into one map per stage:
``W_i up(L_i x + b_i) = up((W_i L_i) x + W_i b_i)`` (a resize keeps
constants). :func:`stagewise_fusion` binds these forwards, for the
duration of an export, to every such head in a model, as
:mod:`.shape_generic` does for shapes; training and the PyTorch path keep
the heads' own forwards and weights.
"""
from typing import ContextManager, List

from mmseg.models.decode_heads import SegformerHead
from mmseg.models.utils import resize
from torch import Tensor, nn

from .bound_forwards import ForwardTable, bind_forwards
from .decode_heads.segformer_hf_head import SegformerHFHead


def _stagewise_forward(self: SegformerHead, inputs: List[Tensor]) -> Tensor:
    """``SegformerHead.forward`` with the fusion conv per stage (module
    docstring)."""
    inputs = self._transform_inputs(inputs)
    fusion = self.fusion_conv
    weights = fusion.conv.weight.split(self.channels, dim=1)
    size = inputs[0].shape[2:]
    out = None
    for x, conv, weight in zip(inputs, self.convs, weights):
        part = nn.functional.conv2d(conv(x), weight)
        if part.shape[2:] != size:
            part = resize(part, size=size, mode=self.interpolate_mode,
                          align_corners=self.align_corners)
        out = part if out is None else out + part
    if fusion.conv.bias is not None:
        out = out + fusion.conv.bias.view(1, -1, 1, 1)
    if fusion.with_norm:
        out = fusion.norm(out)
    if fusion.with_activation:
        out = fusion.activate(out)
    return self.cls_seg(out)


def _stagewise_hf_forward(self: SegformerHFHead,
                          inputs: List[Tensor]) -> Tensor:
    """``SegformerHFHead.forward`` with each stage's linear map and its
    slice of the fusion folded into one map (module docstring); HF
    concatenates the stages in reverse order."""
    inputs = self._transform_inputs(inputs)
    weights = self.linear_fuse.weight.flatten(1).split(self.channels, dim=1)
    size = inputs[0].shape[2:]
    out = None
    for x, stage, weight in zip(inputs, self.linear_c, weights[::-1]):
        proj = stage.proj
        part = nn.functional.conv2d(
            x, (weight @ proj.weight)[:, :, None, None], weight @ proj.bias)
        if part.shape[2:] != size:
            part = nn.functional.interpolate(part, size=size,
                                             mode='bilinear',
                                             align_corners=False)
        out = part if out is None else out + part
    return self.cls_seg(self.activation(self.batch_norm(out)))


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
    SegformerHFHead: (_stagewise_hf_forward, None),
}


def stagewise_fusion(model: nn.Module) -> ContextManager[int]:
    """Within the block, every ``SegformerHead`` and ``SegformerHFHead``
    in ``model`` (and not a subclass, whose forward may differ) fuses per
    stage (module docstring); yields how many were bound. Their own
    forwards come back afterwards."""
    return bind_forwards(model, FORWARDS)
