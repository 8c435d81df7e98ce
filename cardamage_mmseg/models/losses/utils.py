"""Helpers shared by the project's losses."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F


def valid_one_hot(target: torch.Tensor, num_classes: int,
                  ignore_index: Optional[int]) -> Tuple[torch.Tensor,
                                                        torch.Tensor]:
    """One-hot ``(N, C, H, W)`` targets and the ``(N, 1, H, W)`` valid mask.

    Ignored pixels get an all-zero one-hot row and ``valid == 0``, so they
    drop out of every sum they are multiplied into.
    """
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    if safe.numel() and (safe.min() < 0 or safe.max() >= num_classes):
        raise ValueError(
            f'target holds labels outside 0..{num_classes - 1} that are not '
            f'the ignore index {ignore_index}')
    one_hot = F.one_hot(safe.long(), num_classes).permute(0, 3, 1, 2)
    valid = valid.unsqueeze(1)
    return one_hot.to(torch.float64 if target.dtype == torch.float64 else
                      torch.float32) * valid, valid


def class_weight_tensor(class_weight: Optional[Union[Sequence[float], float]],
                        num_classes: int,
                        like: torch.Tensor) -> Optional[torch.Tensor]:
    if class_weight is None:
        return None
    if isinstance(class_weight, (int, float)):
        class_weight = [float(class_weight)] * num_classes
    if len(class_weight) != num_classes:
        raise ValueError(f'{len(class_weight)} class weights given for '
                         f'{num_classes} classes')
    return like.new_tensor(class_weight)


def masked_softmax_and_one_hot(pred: torch.Tensor, target: torch.Tensor,
                               ignore_index: Optional[int]
                               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and one-hot targets, both zero at ignored
    pixels: the inputs of the region (Dice, IoU) losses."""
    one_hot, valid = valid_one_hot(target, pred.shape[1], ignore_index)
    prob = pred.softmax(dim=1) * valid.to(pred.dtype)
    return prob, one_hot.to(pred.dtype)


def weighted_class_mean(score: torch.Tensor,
                        class_weight: Optional[Sequence[float]],
                        exclude_background: bool) -> torch.Tensor:
    """:math:`\\sum_c w_c s_c / \\sum_c w_c`, with :math:`w_0 = 0` when the
    background is excluded."""
    num_classes = score.shape[0]
    w = class_weight_tensor(class_weight, num_classes, score)
    w = score.new_ones(num_classes) if w is None else w.clone()
    if exclude_background:
        if num_classes < 2:
            raise ValueError('exclude_background needs >= 2 classes')
        w[0] = 0
    return (w * score).sum() / w.sum()


def refuse_pixel_weight(weight: Optional[torch.Tensor], loss: str) -> None:
    """Region losses (Dice, IoU, Lovasz) score whole masks: a per-pixel
    weight (mmseg's ``seg_weight``, from a pixel sampler such as OHEM) has
    no meaning there, so it is refused rather than silently dropped."""
    if weight is not None:
        raise ValueError(
            f'{loss}: per-pixel weights (a pixel sampler such as OHEM) have '
            f'no meaning for a region loss; use the sampler with '
            f'WeightedCrossEntropyLoss or SoftmaxFocalLoss, or remove it')


def safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, and 1 where ``den == 0`` (then ``num == 0`` too: a
    class absent from target and prediction scores perfectly), with
    finite gradients everywhere."""
    empty = den == 0
    ratio = num / torch.where(empty, torch.ones_like(den), den)
    return torch.where(empty, torch.ones_like(ratio), ratio)
