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
    report['damage_share'] = round(np.count_nonzero(damage) / total, 6)
    min_area = max(1, int(round(min_region_fraction * total)))
    regions = []
    for cid, name in enumerate(classes):
        if cid == background_index:
            continue
        sel = (mask == cid).view(np.uint8)
        count = int(np.count_nonzero(sel))
        report[f'share.{name}'] = round(count / total, 6)
        if not count:
            continue
        # components inside the class's bounding box only (the same
        # components; damage is usually a small part of a photo)
        rows = np.flatnonzero(sel.any(axis=1))
        cols = np.flatnonzero(sel.any(axis=0))
        y0, x0 = int(rows[0]), int(cols[0])
        crop = sel[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1]
        n, _, stats, _ = cv2.connectedComponentsWithStats(
            np.ascontiguousarray(crop), connectivity=8)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            x, y = x + x0, y + y0
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
