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
its sign is the argmax), a seventh of the work, and only inside the
windows around the model's damage pixels (:func:`damage_windows`: every
other pixel is background), columns first.

Confidence figures come from the scores at the model's resolution (the
mean probability of the predicted class over its pixels), not from the
photo-size maps.
"""
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

#: output pixels per band (x channels floats in flight)
BAND_PIXELS = 1 << 21

#: (y0, y1, x0, x1): a rectangle of the photo
Window = Tuple[int, int, int, int]

#: output pixels per band of :func:`upsample_sign`: its two float
#: temporaries (256 KB each, allocated once per window) stay in a core's
#: L2 cache; bands of :data:`BAND_PIXELS` (8 MB temporaries, allocated per
#: band) took 20 ms instead of 10.8 on 8 masks of the random-weight model
SIGN_BAND_PIXELS = 1 << 16

#: more separate windows than this: one window around all of them
MAX_WINDOWS = 64

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


def class_softmax(terms: np.ndarray) -> np.ndarray:
    """Softmax over classes (axis 1) of (K, C, ...) log-probabilities or
    logits, a new array: ``exp(z - max_c z) / sum_c exp(z - max_c z)``."""
    z = terms - terms.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def softmax_mean(terms: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The default :data:`Combine`: mean over terms of the softmax over
    classes; labels are its argmax."""
    z = class_softmax(terms)
    probs = z.mean(axis=0) if len(z) > 1 else z[0]
    return probs, argmax_classes(probs)


def argmax_classes(scores: np.ndarray) -> np.ndarray:
    """``scores.argmax(axis=0)`` as uint8 (the first maximum wins) of a
    (C, ...) array, one class plane at a time: numpy's argmax over the
    first axis strides through memory (7 ms for 2 x 512 x 683 here,
    against 1 ms)."""
    labels = np.zeros(scores.shape[1:], np.uint8)
    best = scores[0].copy()
    for c in range(1, len(scores)):
        wins = scores[c] > best
        labels[wins] = c
        np.maximum(best, scores[c], out=best)
    return labels


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


def _footprint(lo: int, hi: int, i0: np.ndarray, i1: np.ndarray
               ) -> Tuple[int, int]:
    """Output index range [a, b) whose bilinear neighbours ``i0``, ``i1``
    (:func:`sample_index`, with any weight) include an input index in
    [lo, hi]. Both are non-decreasing and ``i0 <= i1 <= i0 + 1``, so that
    is where ``i1 >= lo`` and ``i0 <= hi``: two binary searches."""
    a = int(np.searchsorted(i1, lo, 'left'))
    b = int(np.searchsorted(i0, hi, 'right'))
    return (a, b) if b > a else (0, 0)


def damage_windows(support: np.ndarray, height: int, width: int
                   ) -> List[Window]:
    """Disjoint rectangles of a ``height`` x ``width`` mask upsampled from
    ``support`` (h, w) that hold every connected damage region whole.

    A damage pixel's bilinear neighbours include a support pixel, and the
    neighbours of two 8-adjacent output pixels lie within 2 input pixels
    of each other, so every output region lies in the footprint of one
    8-connected component of ``support`` dilated by one pixel (3 x 3).
    Those footprints' rectangles, merged until none overlap, are the
    windows (one window around everything past :data:`MAX_WINDOWS`)."""
    support = np.ascontiguousarray(support, dtype=np.uint8)
    if not support.any():
        return []
    h, w = support.shape
    grown = cv2.dilate(support, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    rows, cols = sample_index(height, h)[:2], sample_index(width, w)[:2]
    rects = []
    for k in range(1, n):
        x, y, bw, bh, _ = (int(v) for v in stats[k])
        y0, y1 = _footprint(y, y + bh - 1, *rows)
        x0, x1 = _footprint(x, x + bw - 1, *cols)
        if y1 > y0 and x1 > x0:
            rects.append([y0, y1, x0, x1])
    if len(rects) > MAX_WINDOWS:
        rects = [[min(r[0] for r in rects), max(r[1] for r in rects),
                  min(r[2] for r in rects), max(r[3] for r in rects)]]
    merged = True
    while merged:  # a few rectangles: quadratic is fine
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and \
                        b[2] < a[3]:
                    rects[i] = [min(a[0], b[0]), max(a[1], b[1]),
                                min(a[2], b[2]), max(a[3], b[3])]
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(r) for r in rects]


def upsample_sign(diff: np.ndarray, mask: np.ndarray,
                  windows: List[Window]) -> None:
    """Set ``mask`` (H, W) to ``upsampled diff > 0`` inside ``windows``
    and 0 elsewhere: (h, w) ``diff`` upsampled bilinearly to (H, W) by the
    formula above, columns first (``cv2.resize`` to (h, W): a few rows),
    then rows (numpy, on each window's columns only, in bands), as
    ``x[i0] > -t * (x[i1] - x[i0])`` with the row steps taken once at the
    model's height (two row gathers, a product and a comparison written
    into the mask: 4 passes per output pixel, not 7, on bands of
    :data:`SIGN_BAND_PIXELS`)."""
    height, width = mask.shape
    mask[:] = 0
    if not windows:
        return
    cols = cv2.resize(diff, (width, diff.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    r0, r1, rt = sample_index(height, diff.shape[0])
    neg_t = -rt[:, None]
    for y0, y1, x0, x1 in windows:
        # contiguous: np.take gathers rows of a strided view 2.5x slower
        sub = np.ascontiguousarray(cols[:, x0:x1])
        step = np.empty_like(sub)  # x[i1] - x[i0]
        step[-1] = 0  # the last row's i1 is i0
        np.subtract(sub[1:], sub[:-1], out=step[:-1])
        band = max(1, SIGN_BAND_PIXELS // max(1, x1 - x0))
        below = np.empty((min(band, y1 - y0), x1 - x0), np.float32)
        above = np.empty_like(below)
        for ys in range(y0, y1, band):
            ye = min(y1, ys + band)
            lo, hi = below[:ye - ys], above[:ye - ys]
            np.take(step, r0[ys:ye], axis=0, out=hi)
            np.multiply(hi, neg_t[ys:ye], out=hi)
            np.take(sub, r0[ys:ye], axis=0, out=lo)
            np.greater(lo, hi, out=mask[ys:ye, x0:x1].view(bool))


def upsample_to_mask(log_probs: np.ndarray, height: int, width: int,
                     combine: Combine = softmax_mean,
                     background_index: int = 0,
                     full_probs: bool = False) -> Dict:
    """Labels of a photo of ``height`` x ``width`` from model-resolution
    ``log_probs`` (K, C, h, w), band by band.

    Returns ``mask`` (H, W) uint8; ``scores`` (C, h, w) and ``labels``
    (h, w) at the model's resolution; ``support`` (h, w) bool, or None
    (see :func:`~.report.damage_report`) and ``windows``, its
    :func:`damage_windows` if they were needed here, else None; ``mean_confidence`` (mean score of
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
    # the chosen class's score; the maximum, unless a fusion rule's
    # labels are not the argmax of its scores
    conf = (scores.max(axis=0) if combine is softmax_mean else
            np.take_along_axis(scores, labels[None].astype(np.intp),
                               axis=0)[0])
    damage = labels != background_index
    support = None
    if k == 1 and combine is softmax_mean:
        bg = x[0, background_index]
        others = np.delete(x[0], background_index, axis=0)
        support = (others >= (bg - 1e-3 - 1e-4 * np.abs(bg))).any(axis=0)
    mask = np.empty((height, width), np.uint8)
    probs = np.empty((c, height, width), np.float32) if full_probs else None
    windows = None
    if k == 1 and c == 2 and combine is softmax_mean and not full_probs:
        # > 0: class 1 wins; away from the support's windows every pixel
        # is background
        windows = damage_windows(support, height, width)
        upsample_sign(x[0, 1] - x[0, 0], mask, windows)
    else:
        hwd = x.reshape(k * c, h, w).transpose(1, 2, 0).copy()
        for y0, band in upsample_bands(hwd, height, width):
            terms = band.transpose(2, 0, 1).reshape(k, c, *band.shape[:2])
            band_scores, band_labels = combine(terms)
            mask[y0:y0 + len(band)] = band_labels
            if probs is not None:
                probs[:, y0:y0 + len(band)] = band_scores
    return dict(mask=mask, probs=probs, scores=scores, labels=labels,
                support=support, windows=windows,
                mean_confidence=float(conf.mean()),
                damage_confidence=(float(conf[damage].mean())
                                   if damage.any() else None))
