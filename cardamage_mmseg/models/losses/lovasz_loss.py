"""Lovasz-softmax loss (Berman et al., CVPR 2018): the study's "mIoU" loss.

Why this is ours: mmseg 1.2.2's ``LovaszLoss`` computes the Lovasz gradient
in float32 whatever the input dtype (float64 inputs fail in ``torch.dot``)
and raises "Boolean value of Tensor with no values is ambiguous" on a batch
whose pixels are all ignored. Same maths here (tests compare with mmseg's on
ordinary inputs), any dtype, and a zero loss with zero gradient when nothing
is valid. Per-pixel weights (a pixel sampler's) are refused, as by every
region loss here.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .utils import refuse_pixel_weight


def lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted
    errors (Berman et al., Alg. 1)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


@MODELS.register_module()
class LovaszSoftmaxLoss(nn.Module):
    r"""Lovasz-softmax over all valid pixels of the batch.

    .. math::
        L = \frac{1}{|C'|}\sum_{c \in C'} w_c\,
            \overline{\Delta J_c}(m(c)),\quad m_i(c) = |g_{ic} - p_{ic}|

    where :math:`\overline{\Delta J_c}` is the Lovasz extension of the
    Jaccard loss of class :math:`c` and :math:`C'` the classes present in the
    batch's labels (``classes='present'``) or all classes (``'all'``).

    Args:
        classes (str): 'present' or 'all'. Defaults to 'present'.
        class_weight (list[float], optional): :math:`w_c`.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): Defaults to 'loss_lovasz'.
    """

    def __init__(self,
                 classes: str = 'present',
                 class_weight: Optional[List[float]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_lovasz') -> None:
        super().__init__()
        if classes not in ('present', 'all'):
            raise ValueError(f"classes must be 'present' or 'all', got "
                             f'{classes!r}')
        self.classes = classes
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        refuse_pixel_weight(weight, type(self).__name__)
        num_classes = pred.shape[1]
        probs = F.softmax(pred, dim=1).permute(0, 2, 3, 1).reshape(
            -1, num_classes)
        labels = target.reshape(-1)
        valid = labels != ignore_index
        probs, labels = probs[valid], labels[valid]
        losses = []
        for c in range(num_classes):
            fg = (labels == c).to(probs.dtype)
            if self.classes == 'present' and not bool(fg.any()):
                continue
            errors = (fg - probs[:, c]).abs()
            errors_sorted, perm = torch.sort(errors, descending=True)
            term = torch.dot(errors_sorted, lovasz_grad(fg[perm]))
            if self.class_weight is not None:
                term = term * self.class_weight[c]
            losses.append(term)
        if not losses:  # nothing valid: zero loss, zero gradient
            return pred.sum() * 0.0
        return self.loss_weight * torch.stack(losses).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
