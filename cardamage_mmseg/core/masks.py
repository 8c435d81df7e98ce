"""Masks of class ids: the value rules every checker applies, and writing
them as palette PNGs (pixel values stay the class ids)."""
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .files import atomic_write_bytes
from .image import encode_image
from .palette import AIHUB_PALETTE, flat_palette


def out_of_range_values(values: np.ndarray, num_classes: int,
                        ignore_index: int = 255) -> np.ndarray:
    """The values of ``values`` that are neither a class id in
    ``[0, num_classes)`` nor ``ignore_index`` (empty when the mask is
    valid)."""
    values = np.asarray(values)
    return values[((values < 0) | (values >= num_classes)) &
                  (values != ignore_index)]


def holds_damage_ids(values: np.ndarray, num_classes: int) -> bool:
    """Whether any value is a damage class id ``1..num_classes-1``."""
    values = np.asarray(values)
    return bool(((values > 0) & (values < num_classes)).any())


def save_mask(mask: np.ndarray, path: str,
              palette: Optional[Sequence[Sequence[int]]] = None) -> None:
    """Write a palette PNG whose pixel values are the class ids (colours:
    ``palette`` as [[r, g, b], ...]; default the AI Hub palette, whose
    first two colours are the binary one's). Atomic. zlib level 1: a 12 MP
    mask encodes in 40 ms instead of 120 ms (level 6), at 2.4x the bytes
    (75 KB instead of 31 KB here)."""
    img = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode='P')
    img.putpalette(flat_palette(AIHUB_PALETTE if palette is None
                                else palette))
    atomic_write_bytes(path, encode_image(img, 'PNG', compress_level=1))
