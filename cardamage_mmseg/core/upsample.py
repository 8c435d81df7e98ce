"""From model-resolution scores to the original-size mask, in row bands.

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

applied to rows (numpy, on the model's narrow width), then to columns
(``cv2.resize`` of the band, whose rows it leaves as they are). The inputs
are log-probabilities (one map per term: a flipped pass, an ensemble
member): a class-constant shift does not change a softmax, so
``softmax(upsample(log_softmax(z))) == softmax(upsample(z))`` and a single
model gives mmseg's mask (up to float rounding). With two classes and one
term only the difference ``z_1 - z_0`` is upsampled (bilinear is linear:
its sign is the argmax), a seventh of the work.

Confidence figures come from the scores at the model's resolution (the
mean probability of the predicted class over its pixels), not from the
photo-size maps.
"""
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

#: output pixels per band (x channels floats in flight)
BAND_PIXELS = 1 << 21

#: (K, C, ...) log-probabilities of K terms -> (C, ...) scores
#: (probabilities or vote shares) and (...) uint8 labels
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


def upsample_bands(maps: np.ndarray, height: int, width: int):
    """Yield ``(y0, band)``: ``maps`` (h, w, D) float32 upsampled
    bilinearly to ``height`` x ``width``, as (rows, width, D) bands."""
    h, w, d = maps.shape
    r0, r1, rt = sample_index(height, h)
    band = max(1, BAND_PIXELS // max(1, width * d))
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        t = rt[y0:y1, None, None]
        rows = maps[r0[y0:y1]] * (1 - t) + maps[r1[y0:y1]] * t
        out = cv2.resize(rows, (width, y1 - y0),
                         interpolation=cv2.INTER_LINEAR)
        yield y0, out.reshape(y1 - y0, width, d)


def upsample_to_mask(log_probs: np.ndarray, height: int, width: int,
                     combine: Combine = softmax_mean,
                     background_index: int = 0,
                     full_probs: bool = False) -> Dict:
    """Labels of a photo of ``height`` x ``width`` from model-resolution
    ``log_probs`` (K, C, h, w), band by band.

    Returns ``mask`` (H, W) uint8; ``scores`` (C, h, w) and ``labels``
    (h, w) at the model's resolution; ``mean_confidence`` (mean score of
    the chosen class over those pixels), ``damage_confidence`` (the same
    over non-background pixels, None if there are none); ``probs``: (C,
    H, W) float32 scores if ``full_probs``, else None.
    """
    if log_probs.ndim != 4:
        raise ValueError(f'log_probs must be (K, C, h, w), not '
                         f'{log_probs.shape}')
    k, c, h, w = log_probs.shape
    x = np.ascontiguousarray(log_probs, dtype=np.float32)
    scores, labels = combine(x)
    conf = np.take_along_axis(scores, labels[None].astype(np.intp),
                              axis=0)[0]
    damage = labels != background_index
    mask = np.empty((height, width), np.uint8)
    probs = np.empty((c, height, width), np.float32) if full_probs else None
    if k == 1 and c == 2 and combine is softmax_mean and not full_probs:
        diff = (x[0, 1] - x[0, 0])[..., None]  # > 0: class 1 wins
        for y0, band in upsample_bands(diff, height, width):
            mask[y0:y0 + len(band)] = band[..., 0] > 0
    else:
        hwd = x.reshape(k * c, h, w).transpose(1, 2, 0).copy()
        for y0, band in upsample_bands(hwd, height, width):
            terms = band.transpose(2, 0, 1).reshape(k, c, *band.shape[:2])
            band_scores, band_labels = combine(terms)
            mask[y0:y0 + len(band)] = band_labels
            if probs is not None:
                probs[:, y0:y0 + len(band)] = band_scores
    return dict(mask=mask, probs=probs, scores=scores, labels=labels,
                mean_confidence=float(conf.mean()),
                damage_confidence=(float(conf[damage].mean())
                                   if damage.any() else None))
