"""Fitting a photo to a model input without mmcv: the same sizes and
pixels as mmcv's ``Resize(scale, keep_ratio=True)`` (cv2 bilinear), and
bottom/right padding as mmseg's data preprocessor does it."""
from typing import Sequence, Tuple

import cv2
import numpy as np


def rescale_size(width: int, height: int,
                 scale: Sequence[int]) -> Tuple[int, int]:
    """(w, h) of an image fitted inside ``scale`` keeping its aspect ratio:

        f = min(max(scale) / max(w, h), min(scale) / min(w, h))
        size = (int(w * f + 0.5), int(h * f + 0.5))

    which is mmcv's ``rescale_size`` for a tuple scale."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(width, height),
                 short_edge / min(width, height))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def resize_for_model(rgb: np.ndarray, scale: Sequence[int]) -> np.ndarray:
    """Resize an (H, W, C) image to :func:`rescale_size` with bilinear
    interpolation (mmcv's default backend and mode: identical pixels)."""
    height, width = rgb.shape[:2]
    size = rescale_size(width, height, scale)
    if size == (width, height):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def pad_to(image: np.ndarray, height: int, width: int,
           value: float = 0) -> np.ndarray:
    """Pad an (H, W, ...) array at the bottom and right to (height, width)
    with ``value``; an array already as large is returned as is."""
    pad_h, pad_w = height - image.shape[0], width - image.shape[1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f'cannot pad {image.shape[:2]} to '
                         f'{(height, width)}: larger than the target')
    if not pad_h and not pad_w:
        return image
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, constant_values=value)
