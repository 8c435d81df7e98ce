"""Knowledge-distillation losses for segmentation (student vs teacher).

Why these are ours: mmseg has none (OpenMMLab keeps them in mmrazor, which
is not maintained for mmseg 1.2 / mmengine 0.10). Each module declares what
it reads: ``input = 'logits'`` (decode-head outputs) or ``'features'``
(backbone stages ``student_index``/``teacher_index``).
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def _match_size(x: Tensor, size) -> Tensor:
    if x.shape[-2:] == tuple(size):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


class _DistillLoss(nn.Module):
    """Weight, temperature and log name shared by the logit losses."""
    input = 'logits'

    def __init__(self, tau: float, loss_weight: float,
                 loss_name: str) -> None:
        super().__init__()
        self.tau = tau
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class PixelKLDistillLoss(_DistillLoss):
    r"""Pixel-wise KL divergence over the CLASS axis (Hinton et al. 2015).

    .. math::
        L = \frac{\tau^2}{|V|} \sum_{i \in V} \sum_c
            p^t_{ic} (\log p^t_{ic} - \log p^s_{ic}),\quad
        p_{i\cdot} = \mathrm{softmax}_c(z_{i\cdot} / \tau)

    over valid (non-ignored) pixels :math:`V`; teacher logits are resized to
    the student's size. (The study took the softmax over the image width by
    mistake; this is the per-pixel class distillation.)
    """

    def __init__(self, tau: float = 2.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_kd') -> None:
        super().__init__(tau, loss_weight, loss_name)

    def forward(self, student: Tensor, teacher: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        """student/teacher: (N, C, H, W) logits; valid: (N, H, W) bool."""
        teacher = _match_size(teacher.detach(), student.shape[-2:])
        log_ps = F.log_softmax(student / self.tau, dim=1)
        log_pt = F.log_softmax(teacher / self.tau, dim=1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1)  # (N, H, W)
        if valid is None:
            loss = kl.mean()
        else:
            valid = valid.to(kl.dtype)
            loss = (kl * valid).sum() / valid.sum().clamp_min(1.0)
        return self.loss_weight * self.tau**2 * loss


@MODELS.register_module()
class ChannelWiseDistillLoss(_DistillLoss):
    r"""Channel-wise distillation (CWD, Shu et al., ICCV 2021).

    Each channel's map becomes a distribution over the H x W positions:

    .. math::
        L = \frac{\tau^2}{N C} \sum_{n, c} \sum_{i}
            \phi(z^t_{nc})_i (\log \phi(z^t_{nc})_i - \log \phi(z^s_{nc})_i),
        \quad \phi(z)_i = \mathrm{softmax}_i(z_i / \tau)

    Applied to logits (``input='logits'``) as mmrazor's segmentation recipe.
    """

    def __init__(self, tau: float = 4.0, loss_weight: float = 3.0,
                 loss_name: str = 'loss_cwd') -> None:
        super().__init__(tau, loss_weight, loss_name)

    def forward(self, student: Tensor, teacher: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        teacher = _match_size(teacher.detach(), student.shape[-2:])
        n, c = student.shape[:2]
        s = student.reshape(n * c, -1) / self.tau
        t = teacher.reshape(n * c, -1) / self.tau
        log_pt = F.log_softmax(t, dim=1)
        kl = (log_pt.exp() * (log_pt - F.log_softmax(s, dim=1))).sum()
        return self.loss_weight * self.tau**2 * kl / (n * c)


@MODELS.register_module()
class FeatureMimicLoss(nn.Module):
    r"""MSE between a student and a teacher backbone stage.

    .. math:: L = \mathrm{mean}\big((A(f^s) - f^t)^2\big)

    :math:`A` is a learned 1x1 convolution when channel counts differ
    (identity otherwise); student features are resized to the teacher's
    size. The adapter is training-only: ``tools/extract_student.py`` drops
    it.
    """
    input = 'features'

    def __init__(self, student_channels: int, teacher_channels: int,
                 student_index: int, teacher_index: Optional[int] = None,
                 loss_weight: float = 1.0,
                 loss_name: Optional[str] = None) -> None:
        super().__init__()
        self.student_index = student_index
        self.teacher_index = (student_index
                              if teacher_index is None else teacher_index)
        self.adapter = (nn.Conv2d(student_channels, teacher_channels, 1)
                        if student_channels != teacher_channels else
                        nn.Identity())
        self.loss_weight = loss_weight
        self._loss_name = loss_name or f'loss_feat{student_index}'

    def forward(self, student: Tensor, teacher: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        student = _match_size(self.adapter(student), teacher.shape[-2:])
        return self.loss_weight * F.mse_loss(student, teacher.detach())

    @property
    def loss_name(self) -> str:
        return self._loss_name
