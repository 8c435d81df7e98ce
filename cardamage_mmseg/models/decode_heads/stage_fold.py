"""Per-stage fusion of a SegFormer head's stages: the pieces both heads
share (:mod:`..stagewise_fusion` for mmseg's head in the export,
:class:`.SegformerHFHead` in eval mode).

A head that resizes ``K`` stage maps ``g_i`` to the first stage's size
``S``, concatenates them and fuses with one 1x1 convolution ``W = [W_0 ..
W_{K-1}]`` computes ``sum_i up(W_i g_i)`` as well: a 1x1 convolution and a
resize without antialiasing are both linear and act on different axes, so
they commute, and each ``W_i`` runs at stage ``i``'s own resolution. An
eval-mode BatchNorm after the fusion is affine, ``s * y + t``, and folds
into the ``W_i`` (:func:`fold_norm`).
"""
from typing import List, Optional, Sequence, Tuple

from mmseg.models.utils import resize
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def eval_affine(norm: Optional[nn.Module]
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


def fold_norm(weights: Sequence[Tensor], bias: Optional[Tensor],
              norm: Optional[nn.Module]
              ) -> Tuple[List[Tensor], Optional[Tensor], Optional[nn.Module]]:
    """The per-stage fusion ``weights`` (C_out first) and ``bias`` with
    ``norm`` folded in where it is affine: ``W_i -> diag(s) W_i``, ``b ->
    s * b + t``; the norm that is left to apply (None once folded)."""
    affine = eval_affine(norm)
    if affine is None:
        return list(weights), bias, norm
    scale, shift = affine
    folded = [w * scale.view(-1, *[1] * (w.dim() - 1)) for w in weights]
    return folded, shift if bias is None else bias * scale + shift, None


def sum_stages(parts: List[Tensor], first: Tensor, size, mode: str,
               align_corners: Optional[bool]) -> Tensor:
    """``first + sum_i up(parts_i)``: the first stage's map added last, so
    that ONNX Runtime fuses it with the sum (and the activation after:
    one pass less over a (N, C, S) map each)."""
    rest = None
    for part in parts:
        if part.shape[2:] != size:
            part = resize(part, size=size, mode=mode,
                          align_corners=align_corners)
        rest = part if rest is None else rest + part
    return first if rest is None else first + rest
