"""Photos far from square: sliding windows along the long side.

A keep-ratio resize to 512 leaves a 4000 x 220 photo 28 pixels high, less
than a MiT backbone's 32x reduction, and the model fails. Photos more
elongated than :data:`MAX_ASPECT` are therefore cut into windows of that
aspect ratio (``OVERLAP`` of a window shared with the next; the last one
ends at the photo's edge), each segmented as a photo of its own, and their
model-resolution log-probabilities are averaged where windows overlap
(:func:`stitch`), before the usual upsampling to the photo's size.
"""
from typing import List, Sequence, Tuple

import numpy as np

#: the most elongated photo segmented in one piece (long side / short side)
MAX_ASPECT = 4.0
#: the short side a window keeps after the model's keep-ratio resize
MIN_SHORT_SIDE = 128


def max_aspect_for(scale) -> float:
    """The window aspect ratio for a model whose keep-ratio resize fits
    photos into ``scale`` (w, h): at most :data:`MAX_ASPECT`, and small
    enough that a window's short side stays >= :data:`MIN_SHORT_SIDE`
    (>= 1: square windows for very small inputs)."""
    return float(min(MAX_ASPECT, max(1.0, max(scale) / MIN_SHORT_SIDE)))
#: fraction of a window shared with the next one
OVERLAP = 0.25

#: (y0, y1, x0, x1) of a window in the photo
Window = Tuple[int, int, int, int]


def aspect_windows(height: int, width: int, max_aspect: float = MAX_ASPECT,
                   overlap: float = OVERLAP) -> List[Window]:
    """Windows covering the photo: one (the photo) if ``max(h, w) <=
    max_aspect * min(h, w)``, else ``min(h, w)`` by ``max_aspect *
    min(h, w)`` windows along the long side, ``overlap`` apart."""
    long_side, short_side = max(height, width), min(height, width)
    if long_side <= max_aspect * short_side:
        return [(0, height, 0, width)]
    size = int(short_side * max_aspect)
    stride = max(1, int(size * (1 - overlap)))
    starts = list(range(0, long_side - size, stride)) + [long_side - size]
    if width >= height:
        return [(0, height, s, s + size) for s in starts]
    return [(s, s + size, 0, width) for s in starts]


def stitch(parts: Sequence[np.ndarray], windows: Sequence[Window],
           height: int, width: int) -> np.ndarray:
    """Average window outputs (..., h, w) (all of one size: the windows are)
    on a canvas of the photo at the windows' scale. A window's offset is
    rounded to the canvas grid (at most half a model pixel off); the last
    window is aligned to the canvas edge."""
    if len(parts) == 1:
        return parts[0]
    ph, pw = parts[0].shape[-2:]
    wy0, wy1, wx0, wx1 = windows[0]
    fy, fx = ph / (wy1 - wy0), pw / (wx1 - wx0)
    ch, cw = max(ph, int(round(height * fy))), max(pw, int(round(width * fx)))
    canvas = np.zeros(parts[0].shape[:-2] + (ch, cw), np.float32)
    count = np.zeros((ch, cw), np.float32)
    for part, (y0, _, x0, _) in zip(parts, windows):
        oy = min(int(round(y0 * fy)), ch - ph)
        ox = min(int(round(x0 * fx)), cw - pw)
        canvas[..., oy:oy + ph, ox:ox + pw] += part
        count[oy:oy + ph, ox:ox + pw] += 1
    return canvas / np.maximum(count, 1)
