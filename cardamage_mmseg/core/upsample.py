"""From model-resolution scores to the original-size mask, in row tiles.

mmseg resizes every class's logits to the photo's size (bilinear,
``align_corners=False``) and takes the argmax: a 100 MP photo holds 2 x 100
M floats per class map and as many again for the softmax. Here the same
bilinear upsampling runs on bands of output rows, so no full-resolution
float map of every class exists unless asked for (``full_probs``).

Bilinear sampling with ``align_corners=False`` (PyTorch's and OpenCV's
rule), for output index ``i`` of ``n_out`` from ``n_in`` inputs::

    s = max((i + 0.5) * n_in / n_out - 0.5, 0)
    i0 = floor(s);  i1 = min(i0 + 1, n_in - 1);  t = s - i0
    y[i] = (1 - t) * x[i0] + t * x[i1]

applied to rows, then to columns. The inputs are log-probabilities (one
map per term: a flipped pass, an ensemble member): since a class-constant
shift does not change a softmax, ``softmax(upsample(log_softmax(z)))`` ==
``softmax(upsample(z))``, so a single model gives mmseg's probabilities and
mask (up to float rounding).
"""
from typing import Callable, Dict, Tuple

import numpy as np

#: output pixels per band (x classes x terms floats in flight)
BAND_PIXELS = 1 << 21

#: (K, C, h, W) upsampled log-probabilities of K terms -> (C, h, W) scores
#: (probabilities or vote shares) and (h, W) labels
Combine = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


def sample_index(n_out: int, n_in: int) -> Tuple[np.ndarray, np.ndarray,
                                                 np.ndarray]:
    """(i0, i1, t) of bilinear sampling, ``align_corners=False``."""
    s = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    s = np.maximum(s, 0.0)
    i0 = np.minimum(s.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (s - i0).astype(np.float32)


def softmax_mean(terms: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The default :data:`Combine`: mean over terms of the softmax over
    classes; labels are its argmax."""
    z = terms - terms.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    probs = z.mean(axis=0) if len(z) > 1 else z[0]
    return probs, probs.argmax(axis=0).astype(np.uint8)


def upsample_to_mask(log_probs: np.ndarray, height: int, width: int,
                     combine: Combine = softmax_mean,
                     background_index: int = 0,
                     full_probs: bool = False) -> Dict:
    """Labels of a photo of ``height`` x ``width`` from model-resolution
    ``log_probs`` (K, C, h, w), band by band.

    Returns ``mask`` (H, W) uint8, ``mean_confidence`` (mean over pixels of
    the score of the chosen class), ``damage_confidence`` (the same over
    non-background pixels, None if there are none) and ``probs``: (C, H, W)
    float32 scores if ``full_probs``, else None.
    """
    if log_probs.ndim != 4:
        raise ValueError(f'log_probs must be (K, C, h, w), not '
                         f'{log_probs.shape}')
    k, c, h, w = log_probs.shape
    x = np.ascontiguousarray(log_probs, dtype=np.float32)
    r0, r1, rt = sample_index(height, h)
    c0, c1, ct = sample_index(width, w)
    mask = np.empty((height, width), np.uint8)
    probs = np.empty((c, height, width), np.float32) if full_probs else None
    conf_sum = damage_sum = 0.0
    damage_px = 0
    band = max(1, BAND_PIXELS // max(1, width * k * c))
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        t = rt[y0:y1, None]
        rows = x[:, :, r0[y0:y1]] * (1 - t) + x[:, :, r1[y0:y1]] * t
        tile = rows[..., c0] * (1 - ct) + rows[..., c1] * ct
        scores, labels = combine(tile)
        mask[y0:y1] = labels
        conf = np.take_along_axis(scores, labels[None].astype(np.intp),
                                  axis=0)[0]
        conf_sum += float(conf.sum(dtype=np.float64))
        damage = labels != background_index
        damage_px += int(damage.sum())
        damage_sum += float(conf[damage].sum(dtype=np.float64))
        if probs is not None:
            probs[:, y0:y1] = scores
    return dict(mask=mask, probs=probs,
                mean_confidence=conf_sum / max(1, height * width),
                damage_confidence=(damage_sum / damage_px
                                   if damage_px else None))

