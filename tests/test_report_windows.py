"""Regions counted inside damage windows are the regions of the whole mask
(core.report.damage_windows): the fast path may never change a report."""
import numpy as np
import pytest

import cv2

from cardamage_mmseg.core.report import (component_stats, damage_report,
                                         damage_windows)
from cardamage_mmseg.core.upsample import upsample_to_mask


def _log_probs(rng, classes, h, w, blobs, noise):
    """(1, C, h, w) log-softmax of smooth blobs plus noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    z = np.zeros((classes, h, w), np.float32)
    for _ in range(blobs):
        c = rng.integers(1, classes)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.5, 0.2 * max(h, w))
        z[c] += 6 * np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))
    z += rng.normal(0, noise, z.shape).astype(np.float32)
    z[0] += 2.5
    z -= np.log(np.exp(z).sum(0, keepdims=True))
    return z[None]


@pytest.mark.parametrize('seed', range(12))
def test_windowed_report_equals_the_full_scan(seed):
    rng = np.random.default_rng(seed)
    classes = ('background', 'dent', 'scratch')[:2 + seed % 2]
    h, w = int(rng.integers(3, 40)), int(rng.integers(3, 40))
    lp = _log_probs(rng, len(classes), h, w, int(rng.integers(0, 8)),
                    noise=[0.05, 1.5][seed % 3 == 0])
    height, width = int(rng.integers(h, 9 * h)), int(rng.integers(w, 9 * w))
    up = upsample_to_mask(lp, height, width)
    assert up['support'] is not None
    mask = up['mask']
    fast = damage_report(mask, None, classes, 1e-4, support=up['support'])
    full = damage_report(mask, None, classes, 1e-4)
    assert fast == full
    if up['windows'] is not None:  # the windows the upsampling used
        assert damage_report(mask, None, classes, 1e-4,
                             support=up['support'],
                             windows=up['windows']) == full
        # a model's class ids: a binary mask is its own damage map
        assert damage_report(mask, None, classes, 1e-4,
                             support=up['support'], windows=up['windows'],
                             num_values=len(classes)) == full
    # every damage pixel lies in a window, and windows are disjoint
    windows = damage_windows(up['support'], height, width)
    inside = np.zeros(mask.shape, bool)
    for y0, y1, x0, x1 in windows:
        assert not inside[y0:y1, x0:x1].any()
        inside[y0:y1, x0:x1] = True
    assert not (mask[~inside] != 0).any()


def test_one_pixel_touching_diagonally_stays_one_region():
    """Two support pixels 2 apart can make one region at the photo's size:
    they must share a window (the 3 x 3 dilation)."""
    lp = np.full((1, 2, 6, 6), -5.0, np.float32)
    lp[0, 0] = 0.0
    for y, x in ((1, 1), (3, 3)):
        lp[0, 1, y, x], lp[0, 0, y, x] = 0.0, -5.0
    up = upsample_to_mask(lp, 60, 60)
    fast = damage_report(up['mask'], None, ('background', 'damage'), 0,
                         support=up['support'])
    assert fast == damage_report(up['mask'], None, ('background', 'damage'),
                                 0)
    assert len(damage_windows(up['support'], 60, 60)) == 1


@pytest.mark.parametrize('classes', [2, 3, 6])
def test_argmax_classes_is_numpy_argmax_ties_included(classes):
    from cardamage_mmseg.core.upsample import argmax_classes
    rng = np.random.default_rng(classes)
    scores = rng.integers(0, 3, (classes, 17, 23)).astype(np.float32)
    labels = argmax_classes(scores)
    assert labels.dtype == np.uint8
    assert np.array_equal(labels, scores.argmax(axis=0))


def test_component_stats_past_16_bit_labels():
    """90,000 one-pixel components: 16-bit labels overflow (OpenCV raises),
    32-bit labels take over with the same statistics."""
    dots = np.zeros((600, 600), np.uint8)
    dots[::2, ::2] = 1
    n, stats = component_stats(dots)
    ref_n, _, ref, _ = cv2.connectedComponentsWithStats(dots,
                                                        connectivity=8)
    assert n == ref_n == 90001
    key = np.lexsort(stats.T[::-1])
    assert (stats[key] == ref[np.lexsort(ref.T[::-1])]).all()
    report = damage_report(dots, None, ('background', 'damage'), 0)
    assert report['num_regions'] == 90000
    few = np.zeros((50, 60), np.uint8)
    few[5:9, 3:50] = few[20:40, 30:31] = 1
    n, stats = component_stats(few)  # 16-bit labels
    assert n == 3 and sorted(stats[1:, 4].tolist()) == [20, 188]


def _opencv_regions(binary, min_area):
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    return [tuple(int(v) for v in row) for row in stats[1:n]
            if row[4] >= max(1, min_area)]


@pytest.mark.parametrize('seed', range(40))
def test_component_regions_are_opencvs_statistics(seed):
    """Areas from the labels' histogram and boxes from outer contours give
    OpenCV's own statistics: rings with islands in their holes, pixels
    touching only diagonally, components on the border, thin strips."""
    from cardamage_mmseg.core.report import component_regions
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 150)), int(rng.integers(1, 150))
    binary = (rng.random((h, w)) < rng.uniform(0.02, 0.7)).astype(np.uint8)
    if seed % 3 == 0:  # blobs
        binary = cv2.dilate(binary, np.ones((3, 3), np.uint8))
    if seed % 4 == 1 and h > 12 and w > 12:  # a ring around an island
        binary[2:h - 2, 2:w - 2] = 1
        binary[4:h - 4, 4:w - 4] = 0
        binary[h // 2, w // 2] = 1
    min_area = int(rng.integers(0, 6))
    assert component_regions(binary, min_area) == _opencv_regions(binary,
                                                                  min_area)


def test_component_regions_many_components_and_nested_rings():
    from cardamage_mmseg.core.report import (MANY_COMPONENTS,
                                             component_regions)
    dots = np.zeros((200, 200), np.uint8)
    dots[::2, ::2] = 1  # 10,000 components: OpenCV's statistics
    assert 10000 > MANY_COMPONENTS
    assert component_regions(dots) == _opencv_regions(dots, 1)
    rings = np.zeros((41, 41), np.uint8)
    for r in range(0, 20, 4):  # rings nested 5 deep: one region each
        rings[r:41 - r, r:41 - r] = 1
        rings[r + 2:39 - r, r + 2:39 - r] = 0
    rings[20, 20] = 1
    got = component_regions(rings)
    assert got == _opencv_regions(rings, 1) and len(got) == 6
    assert component_regions(rings, 10**6) == []
    assert component_regions(np.zeros((5, 7), np.uint8)) == []


@pytest.mark.parametrize('n_out, n_in', [(1, 1), (7, 3), (3024, 384),
                                         (4032, 512), (5, 9), (100, 100)])
def test_footprint_is_the_bilinear_neighbourhood(n_out, n_in):
    """Two binary searches give the output range whose neighbours touch
    [lo, hi], as the brute-force scan over every output index does."""
    from cardamage_mmseg.core.upsample import _footprint, sample_index
    i0, i1, _ = sample_index(n_out, n_in)
    rng = np.random.default_rng(n_out)
    for _ in range(60):
        lo = int(rng.integers(0, n_in))
        hi = int(rng.integers(lo, n_in))
        hit = np.flatnonzero(((i0 >= lo) & (i0 <= hi)) |
                             ((i1 >= lo) & (i1 <= hi)))
        want = (int(hit[0]), int(hit[-1]) + 1) if len(hit) else (0, 0)
        assert _footprint(lo, hi, i0, i1) == want
