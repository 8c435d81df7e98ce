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
constants). The BatchNorm after the fusion is affine in eval mode,
``BN(y) = s * y + t``, so it folds into the per-stage maps too
(``W_i -> diag(s) W_i``, ``t`` the first stage's bias), and the first
stage's map is applied last: ONNX Runtime then runs its convolution, the
sum of the other stages and the ReLU as one kernel (b0 at batch 2: one
pass less over a (2, 256, 128, 128) map each for the BN and the ReLU).
:func:`stagewise_fusion` binds these forwards, for the
duration of an export, to every such head in a model, as
:mod:`.shape_generic` does for shapes; training and the PyTorch path keep
the heads' own forwards and weights.
"""
from typing import ContextManager, List, Optional, Sequence, Tuple

from mmseg.models.decode_heads import SegformerHead
from mmseg.models.utils import resize
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .bound_forwards import ForwardTable, bind_forwards
from .decode_heads.segformer_hf_head import SegformerHFHead


def _eval_affine(norm: Optional[nn.Module]
                 ) -> Optional[Tuple[Tensor, Tensor]]:
    """``(s, t)`` with ``norm(y) = s * y + t`` per channel, for a BatchNorm
    that normalises with its running statistics (eval mode); else None."""
    if (not isinstance(norm, _BatchNorm) or norm.training
            or norm.running_var is None):
        return None
    scale = (norm.running_var + norm.eps).rsqrt()
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


def _fold_norm(weights: Sequence[Tensor], bias: Optional[Tensor],
               norm: Optional[nn.Module]
               ) -> Tuple[List[Tensor], Optional[Tensor], Optional[nn.Module]]:
    """The per-stage fusion ``weights`` (C_out first) and ``bias`` with
    ``norm`` folded in where it is affine (module docstring); the norm
    that is left to apply (None once folded)."""
    affine = _eval_affine(norm)
    if affine is None:
        return list(weights), bias, norm
    scale, shift = affine
    folded = [w * scale.view(-1, *[1] * (w.dim() - 1)) for w in weights]
    return folded, shift if bias is None else bias * scale + shift, None


def _sum_stages(parts: List[Tensor], first: Tensor, size, mode: str,
                align_corners: Optional[bool]) -> Tensor:
    """``first + sum_i up(parts_i)``: the first stage's map added last, so
    that ONNX Runtime fuses it with the sum (and the activation after)."""
    rest = None
    for part in parts:
        if part.shape[2:] != size:
            part = resize(part, size=size, mode=mode,
                          align_corners=align_corners)
        rest = part if rest is None else rest + part
    return first if rest is None else first + rest


def _stagewise_forward(self: SegformerHead, inputs: List[Tensor]) -> Tensor:
    """``SegformerHead.forward`` with the fusion conv per stage (module
    docstring)."""
    inputs = self._transform_inputs(inputs)
    fusion = self.fusion_conv
    weights, bias, norm = _fold_norm(
        fusion.conv.weight.split(self.channels, dim=1), fusion.conv.bias,
        fusion.norm if fusion.with_norm else None)
    parts = [nn.functional.conv2d(conv(x), weight)
             for x, conv, weight in zip(inputs[1:], self.convs[1:],
                                        weights[1:])]
    first = nn.functional.conv2d(self.convs[0](inputs[0]), weights[0], bias)
    out = _sum_stages(parts, first, inputs[0].shape[2:],
                      self.interpolate_mode, self.align_corners)
    if norm is not None:
        out = norm(out)
    if fusion.with_activation:
        out = fusion.activate(out)
    return self.cls_seg(out)


def _stagewise_hf_forward(self: SegformerHFHead,
                          inputs: List[Tensor]) -> Tensor:
    """``SegformerHFHead.forward`` with each stage's linear map and its
    slice of the fusion folded into one map (module docstring); HF
    concatenates the stages in reverse order."""
    inputs = self._transform_inputs(inputs)
    slices = self.linear_fuse.weight.flatten(1).split(self.channels, dim=1)
    maps, biases = [], []
    for stage, weight in zip(self.linear_c, slices[::-1]):
        maps.append(weight @ stage.proj.weight)
        biases.append(weight @ stage.proj.bias)
    # a resize keeps constants: all biases join the first stage's
    maps, bias, norm = _fold_norm(maps, sum(biases), self.batch_norm)
    parts = [nn.functional.conv2d(x, m[:, :, None, None])
             for x, m in zip(inputs[1:], maps[1:])]
    first = nn.functional.conv2d(inputs[0], maps[0][:, :, None, None], bias)
    out = _sum_stages(parts, first, inputs[0].shape[2:], 'bilinear', False)
    if norm is not None:
        out = norm(out)
    return self.cls_seg(self.activation(out))


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
