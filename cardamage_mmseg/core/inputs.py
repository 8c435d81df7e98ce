"""Which photos a run segments, and the output name of each.

An input is an image, a folder (searched recursively for
:data:`~.files.IMAGE_SUFFIXES` in any case) or a ``.txt`` list with one
path per line (relative to the list; ``#`` starts a comment line). Output
names keep sub-folders and are unique (:func:`unique_names`).
"""
import os
import os.path as osp
from collections import Counter
from typing import List, Sequence, Tuple

from .files import IMAGE_SUFFIXES, is_image_file

#: (input path, output name without extension)
Item = Tuple[str, str]


class InputError(ValueError):
    """The input as a whole names no photo; the message says why."""


def unique_names(items: Sequence[Item]) -> List[Item]:
    """Make output names unique (case-insensitively, for such file
    systems): names shared by several inputs (``a.jpg`` and ``a.png``, or
    two ``x.jpg`` of a list) get the input's extension, then a number."""
    counts = Counter(name.lower() for _, name in items)
    out, used = [], set()
    for path, name in items:
        if counts[name.lower()] > 1:
            ext = osp.splitext(path)[1].lstrip('.').lower()
            name = f'{name}_{ext}' if ext else name
        base, k = name, 2
        while name.lower() in used:
            name, k = f'{base}_{k}', k + 1
        used.add(name.lower())
        out.append((path, name))
    return out


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_folder(out: str, source: str,
                        items: Sequence[Item]) -> None:
    """Refuse an output folder that mixes with the inputs: ``out`` inside
    (or equal to) the input folder ``source`` (its outputs would be
    segmented on the next run, and a photo's mask could overwrite a user's
    ``masks/<name>.png``), or an input photo inside ``out``."""
    out_real = osp.realpath(out)
    if osp.isdir(source) and _inside(out_real, osp.realpath(source)):
        raise InputError(f'--out {out} is inside the input folder {source}: '
                         f'the outputs would become inputs and could '
                         f'overwrite files there; choose a folder outside '
                         f'it')
    for path, _ in items:
        if _inside(osp.realpath(path), out_real):
            raise InputError(f'input {path} lies inside --out {out}: choose '
                             f'an output folder that holds no input')


def collect_inputs(path: str) -> List[Item]:
    """(path, output name) of every photo ``path`` names (see the module
    docstring); :class:`InputError` when there is none."""
    return unique_names(_find_inputs(path))


def _find_inputs(path: str) -> List[Item]:
    if not osp.exists(path):
        raise InputError(f'input {path} does not exist')
    if osp.isdir(path):
        found = []
        for root, _, names in os.walk(path):
            for name in names:
                if is_image_file(name):
                    full = osp.join(root, name)
                    found.append((full, osp.splitext(osp.relpath(
                        full, path))[0]))
        found.sort()
        if not found:
            raise InputError(f'no images ({", ".join(IMAGE_SUFFIXES)}) '
                             f'under {path}')
        return found
    if path.lower().endswith('.txt'):
        base = osp.dirname(osp.abspath(path))
        with open(path, encoding='utf-8') as f:
            lines = [ln.strip() for ln in f if ln.strip()
                     and not ln.startswith('#')]
        if not lines:
            raise InputError(f'{path} lists no images')
        return [(full, osp.splitext(osp.basename(full))[0]) for full in (
            line if osp.isabs(line) else osp.join(base, line)
            for line in lines)]
    return [(path, osp.splitext(osp.basename(path))[0])]
