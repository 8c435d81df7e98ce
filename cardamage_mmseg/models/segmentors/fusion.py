"""Fusion rules of :class:`EnsembleSegmentor` on class probabilities.

Input: ``probs`` of shape (M, C, H, W), the members' class probabilities at
the original image size, and member weights ``w`` (normalised to sum 1).
Output: a score map (C, H, W) and labels (H, W).

Soft rules (scores are probabilities):
- ``mean``: :math:`S = \\frac{1}{M}\\sum_m P_m`.
- ``weighted_mean``: :math:`S = \\sum_m w_m P_m`.
- ``max``: :math:`S_c = \\max_m P_{m,c}` (then renormalised over classes).

Hard rules on each member's label :math:`L_m = \\arg\\max_c P_{m,c}` (scores
are vote shares):
- ``vote``: the class with most votes.
- ``weighted_vote``: the class with the largest sum of member weights (the
  study's DPT/UperNet/SegFormer 0.6/0.3/0.1).
- ``union``: background only where every member says background; elsewhere
  a foreground class (the study's best for the binary task: a pixel is
  damage if any member says damage).
- ``intersection``: foreground only where every member says foreground.

Ties: a hard rule breaks ties between classes by the weighted mean
probability; for ``union``/``intersection`` the foreground class is the one
with the most (weighted) votes among members that chose foreground, ties
again by weighted mean probability. Every rule is label-equivariant, and an
ensemble of one member (or of identical members) reproduces that member's
labels exactly.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

FUSION_RULES = ('mean', 'weighted_mean', 'max', 'vote', 'weighted_vote',
                'union', 'intersection')


def normalise_weights(weights: Sequence[float], num_members: int) -> Tensor:
    w = torch.as_tensor(list(weights), dtype=torch.float64)
    if w.numel() != num_members:
        raise ValueError(f'{w.numel()} weights for {num_members} members')
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f'weights must be >= 0 with a positive sum, got '
                         f'{list(weights)}')
    return w / w.sum()


def _argmax_with_tiebreak(score: Tensor, tiebreak: Tensor) -> Tensor:
    """argmax over dim 0 of ``score``; exact ties go to the class with the
    larger ``tiebreak`` (which is in [0, 1])."""
    best = score.max(dim=0, keepdim=True).values
    candidates = score >= best - 1e-9
    return torch.where(candidates, tiebreak, torch.full_like(tiebreak, -1.0)
                       ).argmax(dim=0)


def fuse(probs: Tensor,
         rule: str,
         weights: Sequence[float] = None,
         background_index: int = 0) -> Tuple[Tensor, Tensor]:
    """Fuse (M, C, H, W) probabilities; see the module docstring."""
    if rule not in FUSION_RULES:
        raise ValueError(f'unknown fusion rule {rule!r}; choose from '
                         f'{FUSION_RULES}')
    num_members, num_classes = probs.shape[:2]
    if weights is None or rule in ('mean', 'vote', 'max'):
        weights = [1.0] * num_members
    w = normalise_weights(weights, num_members).to(probs)
    w4 = w.view(-1, 1, 1, 1)
    mean = (probs * w4).sum(dim=0)  # weighted mean probability
    if rule in ('mean', 'weighted_mean'):
        return mean, mean.argmax(dim=0)
    if rule == 'max':
        score = probs.max(dim=0).values
        score = score / score.sum(dim=0, keepdim=True).clamp_min(1e-12)
        return score, _argmax_with_tiebreak(score, mean)
    labels = probs.argmax(dim=1)  # (M, H, W)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).permute(
        0, 3, 1, 2).to(probs)  # (M, C, H, W)
    votes = (one_hot * w4).sum(dim=0)  # weighted vote share per class
    if rule in ('vote', 'weighted_vote'):
        return votes, _argmax_with_tiebreak(votes, mean)
    # union / intersection: background vs "some foreground class"
    is_fg = labels != background_index  # (M, H, W)
    fg_votes = votes.clone()
    fg_votes[background_index] = -1.0  # never chosen among foregrounds
    fg_label = _argmax_with_tiebreak(fg_votes, mean)
    if rule == 'union':
        foreground = is_fg.any(dim=0)
    else:
        foreground = is_fg.all(dim=0)
    label = torch.where(foreground, fg_label,
                        torch.full_like(fg_label, background_index))
    return votes, label
