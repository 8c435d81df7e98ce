"""Which split each photo goes to, stable across re-runs.

A photo keeps the split it already has on disk: re-running a converter
with another ``--seed`` or ratio, or after the export grew, never moves a
converted photo into a second split (a test photo in training inflates
every reported score). The data set on disk is the record; there is no
separate manifest to lose. New photos are shuffled into the splits by
``--seed`` and the ratios (:func:`split_stems`), among themselves.
"""
import os
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ...core.files import is_image_file
from .common import ConversionError, Entry

SPLIT_NAMES = ('train', 'val', 'test')
#: what a split name may be: one folder name
SPLIT_NAME = re.compile(r'[A-Za-z0-9_.-]+')


def split_stems(stems: Sequence[str], ratios: Sequence[float],
                seed: int = 0,
                names: Sequence[str] = SPLIT_NAMES) -> Dict[str, str]:
    """Deterministic split: sort, shuffle with ``seed``, cut by ratios.

    The same stems and seed always give the same split, whatever the order
    in which files were found.
    """
    if len(ratios) != len(names) or any(r < 0 for r in ratios) or \
            sum(ratios) <= 0:
        raise ValueError(f'bad split ratios {list(ratios)}')
    order = sorted(set(stems))
    random.Random(seed).shuffle(order)
    total = float(sum(ratios))
    bounds, acc = [], 0.0
    for r in ratios:
        acc += r
        bounds.append(int(round(len(order) * acc / total)))
    assignment, start = {}, 0
    for name, end in zip(names, bounds):
        for stem in order[start:end]:
            assignment[stem] = name
        start = end
    return assignment


def check_split_name(split: str) -> None:
    """A split is one plain folder name (``train``, ``val_2``): never a
    path (``../../X`` would write outside the output folder)."""
    if not SPLIT_NAME.fullmatch(split or '') or split in ('.', '..'):
        raise ConversionError(
            f'split name {split!r}: use one folder name of letters, digits, '
            f'"_", "-" or "." (e.g. train, val, test), not a path')


def check_out_root(out_root: str) -> None:
    """The output root is a folder or does not exist yet."""
    if osp.exists(out_root) and not osp.isdir(out_root):
        raise ConversionError(f'--out {out_root} is a file, not a folder: '
                              f'give a folder for img_dir/ and ann_dir/')


def splits_on_disk(out_root: str) -> Dict[str, Set[str]]:
    """stem -> the splits of ``out_root/img_dir/<split>/`` holding an image
    of that stem (hidden and temporary files ignored)."""
    found: Dict[str, Set[str]] = {}
    img_dir = osp.join(out_root, 'img_dir')
    if not osp.isdir(img_dir):
        return found
    for split in sorted(os.listdir(img_dir)):
        folder = osp.join(img_dir, split)
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            if is_image_file(name) and not name.startswith('.'):
                found.setdefault(osp.splitext(name)[0], set()).add(split)
    return found


def kept_split_note(kept: int) -> str:
    """What a converter prints when photos kept their split."""
    return (f'{kept} photo(s) were converted before and kept their split '
            f'(a photo never moves to another split; --seed and '
            f'--split-ratio apply to new photos)')


def assign_splits(entries: List[Entry], out_root: str,
                  ratios: Optional[Sequence[float]] = None,
                  split: Optional[str] = None, seed: int = 0
                  ) -> Tuple[int, int]:
    """Set ``entry.split`` of every entry; returns (kept, new).

    A stem already converted into one split keeps it (counted as kept).
    New stems go to ``split`` or, with ``ratios``, to
    :func:`split_stems` of the new stems. Raises :class:`ConversionError`
    when ``out_root`` already holds a stem in two splits, or when
    ``split`` would put a converted photo into a second split.
    """
    if (ratios is None) == (split is None):
        raise ValueError('give either ratios or split')
    check_out_root(out_root)
    if split is not None:
        check_split_name(split)
    on_disk = splits_on_disk(out_root)
    leaked = sorted(s for s, where in on_disk.items() if len(where) > 1)
    if leaked:
        shown = ', '.join(f'{s} ({"+".join(sorted(on_disk[s]))})'
                          for s in leaked[:5])
        raise ConversionError(
            f'{out_root} already has {len(leaked)} photo(s) in two splits: '
            f'{shown}{" ..." if len(leaked) > 5 else ""}. Delete each from '
            f'all but one split (img_dir and ann_dir) before converting '
            f'more; tools/dataset_converters/check_dataset.py lists them.')
    moving = [e.stem for e in entries
              if split is not None and e.stem in on_disk
              and split not in on_disk[e.stem]]
    if moving:
        first = moving[0]
        old = next(iter(on_disk[first]))
        raise ConversionError(
            f'{len(moving)} photo(s) are already converted into another '
            f'split than --split {split}, e.g. {first} in {old}: converting '
            f'them would put one photo in two splits. Convert them into '
            f'their split, or delete {osp.join(out_root, "img_dir", old)}/'
            f'{first}.* and its mask first to move it.')
    new = [e.stem for e in entries if e.stem not in on_disk]
    fresh = (split_stems(new, ratios, seed) if ratios is not None
             else {s: split for s in new})
    for entry in entries:
        if entry.stem in on_disk:
            entry.split = next(iter(on_disk[entry.stem]))
        else:
            entry.split = fresh[entry.stem]
    return len(entries) - len(new), len(new)
