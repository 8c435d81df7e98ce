"""Focal loss (Lin et al., ICCV 2017) for multi-class segmentation.

Why this is ours: mmseg 1.2.2's ``FocalLoss`` indexes the one-hot target
with ``[:, num_classes]`` instead of ``[:, :num_classes]`` on its CPU path
(mmseg issue #3249), so CPU and GPU give different values. This one is a
single device-agnostic implementation.
"""
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from .utils import class_weight_tensor, valid_one_hot


@MODELS.register_module()
class SoftmaxFocalLoss(nn.Module):
    r"""Softmax (or sigmoid) focal loss with per-class alpha.

    Softmax form, per valid pixel with true class :math:`t`:

    .. math:: FL = -\alpha_t (1 - p_t)^\gamma \log p_t,

    averaged over non-ignored pixels. With ``gamma=0`` and uniform alpha
    (``None``) it equals ``F.cross_entropy(..., ignore_index=...)``.
    Sigmoid form (``use_sigmoid=True``): the binary focal loss of
    ``torchvision.ops.sigmoid_focal_loss`` on one-hot targets, summed over
    classes and averaged over valid pixels. Per-pixel weights :math:`r_i`
    (``weight``: mmseg's ``seg_weight`` from a pixel sampler) make it the
    weighted mean :math:`\sum_i r_i FL_i / \sum_i r_i` over valid pixels,
    the normalisation of :class:`WeightedCrossEntropyLoss`.

    Args:
        gamma (float): Focusing parameter. Defaults to 2.0.
        alpha (float | list[float], optional): Softmax: per-class weight
            (a float gives every class the same). Sigmoid: weight of the
            positives, ``1 - alpha`` for negatives (torchvision's meaning).
        use_sigmoid (bool): Use the sigmoid form. Defaults to False.
        class_weight (list[float], optional): Extra per-class weight.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Log key. Defaults to 'loss_focal'.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Optional[Union[float, List[float]]] = None,
                 use_sigmoid: bool = False,
                 class_weight: Optional[List[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_focal') -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'gamma must be >= 0, got {gamma}')
        self.gamma = gamma
        self.alpha = alpha
        self.use_sigmoid = use_sigmoid
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        """pred: (N, C, H, W) logits; target: (N, H, W) class ids."""
        num_classes = pred.shape[1]
        one_hot, valid = valid_one_hot(target, num_classes, ignore_index)
        one_hot = one_hot.to(pred.dtype)
        valid_f = valid.to(pred.dtype)
        cw = class_weight_tensor(self.class_weight, num_classes, pred)
        if self.use_sigmoid:
            prob = pred.sigmoid()
            ce = F.binary_cross_entropy_with_logits(
                pred, one_hot, reduction='none')
            p_t = prob * one_hot + (1 - prob) * (1 - one_hot)
            loss = ce * self._modulation(p_t)
            if self.alpha is not None:
                a = float(self.alpha)
                loss = loss * (a * one_hot + (1 - a) * (1 - one_hot))
            if cw is not None:
                loss = loss * cw.view(1, -1, 1, 1)
            loss = loss.sum(dim=1, keepdim=True)
        else:
            log_p = F.log_softmax(pred, dim=1)
            log_p_t = (log_p * one_hot).sum(dim=1, keepdim=True)
            loss = -self._modulation(log_p_t.exp()) * log_p_t
            per_class = None
            if self.alpha is not None:
                per_class = class_weight_tensor(self.alpha, num_classes, pred)
            if cw is not None:
                per_class = cw if per_class is None else per_class * cw
            if per_class is not None:
                loss = loss * (one_hot * per_class.view(1, -1, 1, 1)).sum(
                    dim=1, keepdim=True)
        loss = loss * valid_f
        denom = valid_f.sum()
        if weight is not None:  # as WeightedCrossEntropyLoss: a weighted
            r = weight.view_as(loss[:, 0]).unsqueeze(1).to(loss.dtype)
            loss = loss * r  # mean over valid pixels
            denom = (valid_f * r).sum()
        return self.loss_weight * loss.sum() / denom.clamp_min(1e-12)

    def _modulation(self, p_t: torch.Tensor) -> torch.Tensor:
        """``(1 - p_t) ** gamma``, with ``1 - p_t`` kept >= the dtype's
        smallest normal number: at ``p_t = 1`` (every ignored pixel, whose
        one-hot row is zero, and saturated logits) the derivative
        ``gamma (1 - p_t) ** (gamma - 1)`` is infinite for gamma < 1, and
        infinity times the zero that masks the pixel is NaN. The value
        changes by at most ``tiny ** gamma``."""
        tiny = torch.finfo(p_t.dtype).tiny
        return (1 - p_t).clamp_min(tiny)**self.gamma

    @property
    def loss_name(self) -> str:
        return self._loss_name
