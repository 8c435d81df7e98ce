"""AI Hub "Vehicle Damage Image" (dataSetSn=581) labels -> :class:`Entry` list.

One JSON per image, sharing its stem (``0000345_as-0037937.jpg``/``.json``),
in parallel folder trees (``1.원천데이터/...`` images, ``2.라벨링데이터/...``
labels)::

    {"images": {"width": 800, "height": 600, "file_name": "....jpg"},
     "annotations": [{"damage": "Scratched", "segmentation": [[[[x, y], ...]]],
                      "bbox": [...], "area": ...}, ...]}

``segmentation`` nests four lists deep and may hold several polygons.

Modes:
- ``binary``: any damage -> 1.
- ``multiclass``: Scratched 1, Separated 2, Crushed 3, Breakage 4. Where
  polygons of different classes overlap, the more severe class wins:
  Breakage > Crushed > Separated > Scratched (polygons are painted in the
  reverse order).
"""
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ...core.files import IMAGE_SUFFIXES
from .common import (ConversionError, Entry, Polygon, finite_number, read_json,
                     safe_stem)

AIHUB_CLASS_IDS = {'Scratched': 1, 'Separated': 2, 'Crushed': 3,
                   'Breakage': 4}


def _walk(root: str, suffixes: Tuple[str, ...]) -> Iterator[str]:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith(suffixes):
                yield osp.join(folder, name)


def _polygons(segmentation: Any) -> Iterator[Any]:
    """Yield candidate point lists from the 4-deep nesting (tolerating 2-
    and 3-deep and flat ``[x1, y1, x2, y2, ...]`` lists)."""
    if not isinstance(segmentation, list) or not segmentation:
        return
    first = segmentation[0]
    if finite_number(first):  # flat COCO-style
        yield [segmentation[i:i + 2] for i in range(0, len(segmentation), 2)]
    elif isinstance(first, list) and first and finite_number(first[0]):
        yield segmentation  # a list of points
    else:
        for item in segmentation:
            yield from _polygons(item)


def _to_points(raw: Any) -> Tuple[Any, str]:
    if not all(isinstance(p, list) and len(p) == 2 and finite_number(p[0])
               and finite_number(p[1]) for p in raw):
        return None, 'points are not finite [x, y] pairs'
    return np.array(raw, dtype=np.float64).reshape(-1, 2), ''


def parse_label(data: Any, mode: str) -> Tuple[Dict[str, Any], List[Polygon],
                                               List[str]]:
    """Parse one label JSON -> (image info, polygons, problems)."""
    problems: List[str] = []
    if not isinstance(data, dict):
        raise ValueError(f'top level is {type(data).__name__}, not an object')
    info = data.get('images')
    if isinstance(info, list) and len(info) == 1:
        info = info[0]
    if not isinstance(info, dict):
        raise ValueError('"images" is missing or not an object')
    size = (info.get('width'), info.get('height'))
    if not all(finite_number(v) and v > 0 for v in size):
        problems.append('images.width/height missing or invalid; '
                        'image size used as is')
        info = dict(info, width=None, height=None)
    anns = data.get('annotations', [])
    if not isinstance(anns, list):
        raise ValueError('"annotations" is not a list')
    polygons: List[Polygon] = []
    for index, ann in enumerate(anns):
        where = f'annotation {index}'
        if not isinstance(ann, dict):
            problems.append(f'{where} skipped: not an object')
            continue
        damage = ann.get('damage')
        if damage not in AIHUB_CLASS_IDS:
            problems.append(f'{where} skipped: unknown damage {damage!r}')
            continue
        class_id = 1 if mode == 'binary' else AIHUB_CLASS_IDS[damage]
        found = False
        for p_index, raw in enumerate(_polygons(ann.get('segmentation'))):
            found = True
            points, reason = _to_points(raw)
            if points is None:
                problems.append(f'{where}.{p_index} skipped: {reason}')
            else:
                polygons.append(Polygon(class_id, points,
                                        f'{where}.{p_index}'))
        if not found:
            problems.append(f'{where} skipped: no polygon in "segmentation"')
    polygons.sort(key=lambda p: p.class_id)  # severe classes painted last
    return info, polygons, problems


def _pair(label: str, label_root: str, candidates: List[str],
          img_root: str) -> Tuple[Optional[str], str]:
    """The image of a label: the one with its stem in the label's own
    sub-folder (relative to the roots), else the only image with its stem
    anywhere; several elsewhere and none in that folder is ambiguous."""
    if not candidates:
        return None, 'no image with this name'
    folder = osp.dirname(osp.relpath(label, label_root))
    same = [p for p in candidates
            if osp.dirname(osp.relpath(p, img_root)) == folder]
    if same:
        return same[0], ''
    if len(candidates) == 1:
        return candidates[0], ''
    return None, (f'{len(candidates)} images with this name in other '
                  f'folders ({", ".join(candidates[:3])}) and none in '
                  f'{folder or "the root"}: which one is meant is unknown')


def load_aihub_entries(img_root: str, label_root: str, mode: str = 'binary'
                       ) -> Tuple[List[Entry], List[Tuple[str, str]]]:
    """Match label JSONs to images by stem across both trees.

    Returns entries (split unset: the caller assigns it) and skipped items.
    """
    if mode not in ('binary', 'multiclass'):
        raise ValueError(f'mode must be binary or multiclass, not {mode!r}')
    for folder, what in ((img_root, 'image'), (label_root, 'label')):
        if not osp.isdir(folder):
            raise ConversionError(f'{what} folder not found: {folder}')
    images: Dict[str, List[str]] = {}
    skipped: List[Tuple[str, str]] = []
    for path in sorted(_walk(img_root, IMAGE_SUFFIXES)):
        images.setdefault(safe_stem(path), []).append(path)
    labels = sorted(_walk(label_root, ('.json',)))
    if not labels:
        raise ConversionError(f'no *.json label files under {label_root}')
    if not images:
        raise ConversionError(f'no images under {img_root}')
    entries: List[Entry] = []
    seen = set()
    for path in labels:
        stem = safe_stem(path)
        if stem in seen:
            skipped.append((path, 'duplicate label name'))
            continue
        seen.add(stem)
        image, why = _pair(path, label_root, images.get(stem, []), img_root)
        if image is None:
            skipped.append((path, why))
            continue
        try:
            data = read_json(path)
            info, polygons, problems = parse_label(data, mode)
        except (ValueError, RecursionError) as err:
            skipped.append((path, f'bad label JSON: {err}'))
            continue
        size = None
        if info.get('width') and info.get('height'):
            size = (int(info['width']), int(info['height']))
        entries.append(Entry(image, stem, polygons, 'train', size,
                             problems))
    return entries, skipped
