"""Fusion rules of :class:`EnsembleSegmentor` on probability tensors.

The rules, their maths and tie-breaking are :mod:`cardamage_mmseg.core.
fusion` (numpy: the exported runtime and writer processes fuse without
torch); :func:`fuse` here takes and returns tensors on their device, so
``tools/test.py`` and ``tools/ensemble.py`` keep one implementation.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from ...core.fusion import FUSION_RULES, normalise_weights
from ...core.fusion import fuse as fuse_arrays

__all__ = ['FUSION_RULES', 'fuse', 'normalise_weights']


def fuse(probs: Tensor,
         rule: str,
         weights: Optional[Sequence[float]] = None,
         background_index: int = 0) -> Tuple[Tensor, Tensor]:
    """Fuse (M, C, H, W) probabilities (:func:`~...core.fusion.fuse`):
    scores (C, H, W) in ``probs``' dtype and int64 labels (H, W), on
    ``probs``' device."""
    x = probs.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    scores, labels = fuse_arrays(x.cpu().numpy(), rule, weights,
                                 background_index)
    return (torch.from_numpy(scores).to(probs.device, probs.dtype),
            torch.from_numpy(labels).to(probs.device))
