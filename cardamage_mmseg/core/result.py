"""What segmenting one photo gives, and how it is finished from the
model-size log-probabilities (torch-free: writer processes, an exported
model's runtime and the service finish photos with it)."""
from dataclasses import dataclass, field
from typing import Dict, Sequence, Tuple

import numpy as np

from .report import damage_report
from .upsample import Combine, softmax_mean, upsample_to_mask


@dataclass
class DamageResult:
    """What one image gives. ``mask``: (H, W) uint8 class ids at the
    original size; ``probs``: (C, h, w) float32 class scores (an
    ensemble's fused scores) at the model's size, or at the original size
    (C, H, W) with ``full_probs``; ``report``: the figures of one report
    line (confidence at the model's resolution)."""
    source: str
    mask: np.ndarray
    probs: np.ndarray
    report: Dict = field(default_factory=dict)


def finish(log_probs: np.ndarray, size: Tuple[int, int], source: str,
           combine: Combine = softmax_mean,
           classes: Sequence[str] = ('background', 'damage'),
           min_region_fraction: float = 5e-4,
           full_probs: bool = False) -> DamageResult:
    """Mask at ``size`` (H, W) (:func:`~.upsample.upsample_to_mask`),
    scores and report of one photo from its (K, C, h, w)
    log-probabilities."""
    up = upsample_to_mask(log_probs, *size, combine, full_probs=full_probs)
    report = damage_report(
        up['mask'], None, classes, min_region_fraction,
        confidence=(up['mean_confidence'], up['damage_confidence']),
        support=up['support'], windows=up['windows'],
        num_values=len(classes))
    probs = up['probs'] if full_probs else up['scores']
    return DamageResult(source, up['mask'], np.asarray(probs, np.float32),
                        report)
