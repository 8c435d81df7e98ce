"""Class names and colours of the two label sets, and a palette for any
other class list. The one place they are written: datasets, converters,
masks and overlays all read them from here."""
from typing import List, Sequence

import numpy as np

BINARY_CLASSES = ('background', 'damage')
BINARY_PALETTE = [[0, 0, 0], [255, 0, 0]]

#: AI Hub "Vehicle Damage Image" types (ids 0-4)
AIHUB_CLASSES = ('background', 'scratched', 'separated', 'crushed',
                 'breakage')
AIHUB_PALETTE = [[0, 0, 0], [255, 0, 0], [255, 200, 0], [0, 120, 255],
                 [170, 0, 255]]


def palette_for(classes: Sequence[str]) -> List[List[int]]:
    """The palette of a known label set with exactly these classes, else
    black background and fixed pseudo-random colours (seed 0)."""
    classes = tuple(classes)
    if classes == BINARY_CLASSES:
        return [list(c) for c in BINARY_PALETTE]
    if classes == AIHUB_CLASSES:
        return [list(c) for c in AIHUB_PALETTE]
    rng = np.random.RandomState(0)
    return [[0, 0, 0]] + rng.randint(0, 255,
                                     (len(classes) - 1, 3)).tolist()


def flat_palette(palette: Sequence[Sequence[int]]) -> List[int]:
    """[[r, g, b], ...] -> the 768 values of a PIL palette (zero-filled)."""
    flat = [int(c) for colour in palette for c in colour]
    return flat + [0] * (768 - len(flat))
