"""Class-weighted cross-entropy that tolerates ignored pixels.

Why this is ours: mmseg 1.2.2's ``CrossEntropyLoss`` with ``class_weight``
computes its average factor with ``class_weight[cls] for cls in label``,
indexing the weights with the label map itself, so any ignore pixel (255:
padding, or regions mapped to ignore) raises ``IndexError``. PyTorch's own
weighted mean is the right quantity; this is it.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class WeightedCrossEntropyLoss(nn.Module):
    r"""Weighted mean of per-pixel cross-entropy over valid pixels.

    .. math::
        L = \frac{\sum_{i \in V} w_{y_i}\, r_i\, (-\log p_{i, y_i})}
                 {\sum_{i \in V} w_{y_i}\, r_i}

    with class weights :math:`w` (default 1), optional per-pixel weights
    :math:`r` (mmseg's ``seg_weight``) and :math:`V` the non-ignored pixels.
    """

    def __init__(self,
                 class_weight: Optional[List[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__()
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred, target, weight=None, ignore_index: int = 255,
                **kwargs):
        cw = None
        if self.class_weight is not None:
            cw = pred.new_tensor(self.class_weight)
        loss = F.cross_entropy(pred, target, weight=cw, reduction='none',
                               ignore_index=ignore_index)
        valid = target != ignore_index
        w = torch.where(valid, torch.ones_like(loss), torch.zeros_like(loss))
        if cw is not None:
            w = w * cw[torch.where(valid, target, torch.zeros_like(target))]
        if weight is not None:
            w = w * weight.view_as(w)
            loss = loss * weight.view_as(loss)
        return self.loss_weight * loss.sum() / w.sum().clamp_min(1e-12)

    @property
    def loss_name(self) -> str:
        return self._loss_name
