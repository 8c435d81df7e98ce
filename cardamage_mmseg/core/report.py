"""The damage report of one image: shares, regions, confidence."""
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np


def damage_report(mask: np.ndarray, probs: Optional[np.ndarray],
                  classes: Sequence[str], min_region_fraction: float = 5e-4,
                  background_index: int = 0,
                  confidence: Optional[Tuple[float, Optional[float]]] = None
                  ) -> Dict:
    """Figures of one image, computed from its mask (and probabilities).

    - ``damage_share``: fraction of the image's pixels predicted as any
      damage class; ``share.<class>`` per class.
    - ``regions``: connected components (8-connectivity) of each damage
      class with area >= ``min_region_fraction`` x image area:
      ``class, area_px, bbox=[x, y, w, h]``; ``num_regions`` counts them.
    - ``mean_confidence``: mean probability of the predicted class over all
      pixels; ``damage_confidence``: the same over damage pixels (None if
      there are none). ``confidence``: these two, computed elsewhere
      (:func:`~.upsample.upsample_to_mask`, band by band) instead of from
      ``probs``.
    """
    h, w = mask.shape
    total = float(h * w)
    report = dict(width=int(w), height=int(h))
    damage = mask != background_index
    report['damage_share'] = round(float(damage.sum()) / total, 6)
    min_area = max(1, int(round(min_region_fraction * total)))
    regions = []
    for cid, name in enumerate(classes):
        if cid == background_index:
            continue
        sel = (mask == cid).astype(np.uint8)
        report[f'share.{name}'] = round(float(sel.sum()) / total, 6)
        if not sel.any():
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(sel, connectivity=8)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            if area >= min_area:
                regions.append(dict(cls=name, area_px=area,
                                    bbox=[x, y, bw, bh]))
    report['num_regions'] = len(regions)
    report['regions'] = regions
    if confidence is not None:
        mean, on_damage = confidence
        report['mean_confidence'] = round(float(mean), 4)
        report['damage_confidence'] = (None if on_damage is None
                                       else round(float(on_damage), 4))
    elif probs is not None:
        conf = np.take_along_axis(probs, mask[None].astype(np.int64),
                                  axis=0)[0]
        report['mean_confidence'] = round(float(conf.mean()), 4)
        report['damage_confidence'] = (round(float(conf[damage].mean()), 4)
                                       if damage.any() else None)
    return report
