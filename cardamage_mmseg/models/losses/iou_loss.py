"""Soft IoU (Jaccard) loss: mmseg 1.2.2 has none (its Lovasz loss is the
other, non-smooth, IoU surrogate and is reused as is)."""
from typing import List, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .utils import (masked_softmax_and_one_hot, refuse_pixel_weight,
                    safe_ratio, weighted_class_mean)


@MODELS.register_module()
class SoftIoULoss(nn.Module):
    r"""Soft Jaccard loss over the batch, per class (Rahman & Wang 2016).

    .. math::
        J_c = \frac{\sum_i p_{ic} g_{ic} + s}
                   {\sum_i (p_{ic} + g_{ic} - p_{ic} g_{ic}) + s},\qquad
        L = 1 - \frac{\sum_c w_c J_c}{\sum_c w_c}

    over valid (non-ignored) pixels, :math:`p` = softmax probabilities. A
    class absent from target and prediction gives :math:`J_c = 1` (no 0/0,
    also with :math:`s = 0`). Per-pixel weights (``weight``, from a pixel
    sampler) are refused: a ``ValueError``.

    Args:
        smooth (float): :math:`s`. Defaults to 1.0.
        exclude_background (bool): Leave class 0 out of the mean.
        class_weight (list[float], optional): :math:`w_c`.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_iou'.
    """

    def __init__(self,
                 smooth: float = 1.0,
                 exclude_background: bool = False,
                 class_weight: Optional[List[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_iou') -> None:
        super().__init__()
        self.smooth = smooth
        self.exclude_background = exclude_background
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        refuse_pixel_weight(weight, type(self).__name__)
        prob, one_hot = masked_softmax_and_one_hot(pred, target,
                                                   ignore_index)
        dims = (0, 2, 3)
        inter = (prob * one_hot).sum(dims)
        union = (prob + one_hot - prob * one_hot).sum(dims)
        iou = safe_ratio(inter + self.smooth, union + self.smooth)
        mean_iou = weighted_class_mean(iou, self.class_weight,
                                       self.exclude_background)
        return self.loss_weight * (1 - mean_iou)

    @property
    def loss_name(self) -> str:
        return self._loss_name
