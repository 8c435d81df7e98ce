"""Soft Dice loss that really ignores ``ignore_index`` pixels.

Why this is ours: mmseg 1.2.2's ``DiceLoss`` treats ``ignore_index`` as a
*channel* to drop, so ignored pixels stay in the sums (their predictions
still enter the denominator). Here they leave numerator and denominator.
"""
from typing import List, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .utils import (masked_softmax_and_one_hot, refuse_pixel_weight,
                    safe_ratio, weighted_class_mean)


@MODELS.register_module()
class MaskedDiceLoss(nn.Module):
    r"""Soft Dice over the batch, per class, on softmax probabilities.

    .. math::
        D_c = \frac{2\sum_i p_{ic} g_{ic} + s}
                   {\sum_i p_{ic}^k + \sum_i g_{ic}^k + s},\qquad
        L = 1 - \frac{\sum_c w_c D_c}{\sum_c w_c}

    over valid pixels :math:`i` only; :math:`k = 2` with
    ``squared_denominator`` (V-Net), else 1. A class absent from the batch
    and not predicted gives :math:`D_c = 1` (no 0/0, also with
    :math:`s = 0` and a batch of ignored pixels only). Per-pixel weights
    (``weight``, from a pixel sampler) are refused: a ``ValueError``.

    Args:
        smooth (float): :math:`s`. Defaults to 1.0.
        exclude_background (bool): Leave class 0 out of the mean.
        squared_denominator (bool): Defaults to False.
        class_weight (list[float], optional): :math:`w_c`.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_dice'.
    """

    def __init__(self,
                 smooth: float = 1.0,
                 exclude_background: bool = False,
                 squared_denominator: bool = False,
                 class_weight: Optional[List[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        self.smooth = smooth
        self.exclude_background = exclude_background
        self.squared_denominator = squared_denominator
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
        power = 2 if self.squared_denominator else 1
        denom = (prob**power).sum(dims) + (one_hot**power).sum(dims)
        dice = safe_ratio(2 * inter + self.smooth, denom + self.smooth)
        mean_dice = weighted_class_mean(dice, self.class_weight,
                                        self.exclude_background)
        return self.loss_weight * (1 - mean_dice)

    @property
    def loss_name(self) -> str:
        return self._loss_name
