"""Fusion rules of ensembles on class probabilities (numpy, torch-free).

Input: ``probs`` of shape (M, C, ...), the members' class probabilities
(at the photo's size, or a band of its rows), and member weights ``w``
(normalised to sum 1). Output: scores (C, ...) and labels (...).

Soft rules (scores are probabilities):
- ``mean``: :math:`S = \\frac{1}{M}\\sum_m P_m`.
- ``weighted_mean``: :math:`S = \\sum_m w_m P_m`.
- ``max``: :math:`S_c = \\max_m P_{m,c}` (then renormalised over classes).

Hard rules on each member's label :math:`L_m = \\arg\\max_c P_{m,c}` (scores
are vote shares :math:`V_c = \\sum_m w_m [L_m = c]`):
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

Why numpy: the PyTorch backend, the exported runtime (no torch) and writer
processes fuse with this one implementation;
:func:`cardamage_mmseg.models.segmentors.fusion.fuse` is its face for
tensors.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .upsample import class_softmax

FUSION_RULES = ('mean', 'weighted_mean', 'max', 'vote', 'weighted_vote',
                'union', 'intersection')


def normalise_weights(weights: Sequence[float],
                      num_members: int) -> np.ndarray:
    """``weights`` / their sum (float64); ValueError for a wrong count,
    a negative weight or a sum of 0."""
    w = np.asarray(list(weights), dtype=np.float64)
    if w.size != num_members:
        raise ValueError(f'{w.size} weights for {num_members} members')
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f'weights must be >= 0 with a positive sum, got '
                         f'{list(weights)}')
    return w / w.sum()


def _argmax_with_tiebreak(score: np.ndarray,
                          tiebreak: np.ndarray) -> np.ndarray:
    """argmax over axis 0 of ``score``; exact ties go to the class with
    the larger ``tiebreak`` (which is in [0, 1]), then the first."""
    best = score.max(axis=0, keepdims=True)
    return np.where(score >= best - 1e-9, tiebreak, -1.0).argmax(axis=0)


def fuse(probs: np.ndarray, rule: str,
         weights: Optional[Sequence[float]] = None,
         background_index: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Fuse (M, C, ...) probabilities; see the module docstring. Returns
    scores (C, ...) in ``probs``' float type and int64 labels (...)."""
    if rule not in FUSION_RULES:
        raise ValueError(f'unknown fusion rule {rule!r}; choose from '
                         f'{FUSION_RULES}')
    probs = np.asarray(probs)
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float32)
    num_members, num_classes = probs.shape[:2]
    if weights is None or rule in ('mean', 'vote', 'max'):
        weights = [1.0] * num_members
    w = normalise_weights(weights, num_members).astype(probs.dtype)
    mean = probs[0] * w[0]  # weighted mean probability
    for m in range(1, num_members):
        mean += probs[m] * w[m]
    if rule in ('mean', 'weighted_mean'):
        return mean, mean.argmax(axis=0)
    if rule == 'max':
        score = probs.max(axis=0)
        score /= np.maximum(score.sum(axis=0, keepdims=True), 1e-12)
        return score, _argmax_with_tiebreak(score, mean)
    labels = probs.argmax(axis=1)  # (M, ...)
    votes = np.zeros_like(mean)  # weighted vote share per class
    for m in range(num_members):
        for c in range(num_classes):
            votes[c][labels[m] == c] += w[m]
    if rule in ('vote', 'weighted_vote'):
        return votes, _argmax_with_tiebreak(votes, mean)
    # union / intersection: background vs "some foreground class"
    is_fg = labels != background_index  # (M, ...)
    fg_votes = votes.copy()
    fg_votes[background_index] = -1.0  # never chosen among foregrounds
    fg_label = _argmax_with_tiebreak(fg_votes, mean)
    foreground = is_fg.any(axis=0) if rule == 'union' else is_fg.all(axis=0)
    return votes, np.where(foreground, fg_label, background_index)


@dataclass(frozen=True)
class TermFusion:
    """(M * T, C, ...) log-probabilities of M members, T terms each (flip
    passes), member by member -> fused (scores, uint8 labels): each
    member's probabilities (the mean over its T terms), then the rule
    (:func:`fuse`). A core ``Combine`` (:mod:`.upsample`); picklable, so
    writer processes fuse bands of rows."""
    num_members: int
    fusion: str
    weights: Tuple[float, ...]
    background_index: int = 0

    def __call__(self, terms: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        z = class_softmax(np.asarray(terms, dtype=np.float32))
        probs = z.reshape(self.num_members, -1, *z.shape[1:]).mean(axis=1)
        scores, labels = fuse(probs, self.fusion, list(self.weights),
                              self.background_index)
        return scores, labels.astype(np.uint8)
