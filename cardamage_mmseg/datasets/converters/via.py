"""VIA (VGG Image Annotator) polygons -> :class:`Entry` list.

Accepted shapes of the JSON file:

- VIA 1.x project/export: ``{"<filename><size>": {"filename", "size",
  "regions", ...}, ...}`` where ``regions`` is a list or an object keyed
  ``"0", "1", ...``;
- VIA 1.x list export: ``[{"filename", "regions", ...}, ...]``;
- VIA 2.x project: ``{"_via_img_metadata": {...as 1.x...}, ...}``.

Region shapes: ``polygon``/``polyline`` (``all_points_x``/``all_points_y``)
and ``rect`` (``x, y, width, height``). The class is read from
``region_attributes[class_key]`` (a string, or a VIA checkbox/dropdown
object whose true keys are the names) and mapped through ``class_map``:
``{name: id}`` where id 255 paints ignore, and ``None`` drops the region.
Anything malformed is reported, never fatal.
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .common import (ConversionError, Entry, Polygon, finite_number,
                     read_json, safe_stem)

SKIP = None  # class_map value that drops a region


def parse_class_map(text: str) -> Dict[str, Optional[int]]:
    """``'damage=1,dent=1,dirt=ignore,other=skip'`` -> mapping.

    ``ignore`` paints 255 (not trained on, not evaluated); ``skip`` drops the
    region.
    """
    mapping: Dict[str, Optional[int]] = {}
    for item in filter(None, (s.strip() for s in text.split(','))):
        if '=' not in item:
            raise ValueError(f'--class-map item "{item}" is not name=id')
        name, value = (s.strip() for s in item.rsplit('=', 1))
        if value == 'skip':
            mapping[name] = SKIP
        elif value == 'ignore':
            mapping[name] = 255
        else:
            try:
                mapping[name] = int(value)
            except ValueError:
                raise ValueError(f'--class-map id "{value}" of "{name}" is '
                                 f'not an integer, "ignore" or "skip"')
            if not 0 <= mapping[name] <= 255:
                raise ValueError(f'--class-map id {value} out of 0..255')
    if not mapping:
        raise ValueError('--class-map is empty')
    return mapping


def _records(data: Any) -> List[Any]:
    """The per-image records of any supported VIA layout."""
    if isinstance(data, dict) and '_via_img_metadata' in data:
        data = data['_via_img_metadata']
    if isinstance(data, dict):
        return list(data.values())
    if isinstance(data, list):
        return data
    raise ConversionError(
        f'not a VIA file: top level is {type(data).__name__}, expected an '
        f'object or a list')


def _class_names(attrs: Any, class_key: str) -> List[str]:
    if not isinstance(attrs, dict) or class_key not in attrs:
        return []
    value = attrs[class_key]
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, dict):  # VIA checkbox: {"damage": true}
        return [str(k) for k, v in value.items() if v]
    return []


def _region_points(shape: Any) -> Tuple[Optional[np.ndarray], str]:
    if not isinstance(shape, dict):
        return None, 'shape_attributes is not an object'
    name = shape.get('name')
    if name in ('polygon', 'polyline'):
        xs, ys = shape.get('all_points_x'), shape.get('all_points_y')
        if not isinstance(xs, list) or not isinstance(ys, list):
            return None, 'all_points_x/all_points_y missing or not lists'
        if len(xs) != len(ys):
            return None, (f'all_points_x has {len(xs)} values, all_points_y '
                          f'{len(ys)}')
        if not all(finite_number(v) for v in xs + ys):
            return None, 'non-numeric or non-finite coordinate'
        return np.array([xs, ys], dtype=np.float64).T.reshape(-1, 2), ''
    if name == 'rect':
        vals = [shape.get(k) for k in ('x', 'y', 'width', 'height')]
        if not all(finite_number(v) for v in vals) or vals[2] <= 0 or \
                vals[3] <= 0:
            return None, 'rect with missing or invalid x/y/width/height'
        x, y, w, h = vals
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]],
                        dtype=np.float64), ''
    return None, f'unsupported region shape {name!r}'


def load_via_entries(json_path: str, img_dir: str, class_key: str = 'name',
                     class_map: Optional[Dict[str, Optional[int]]] = None,
                     split: str = 'train'
                     ) -> Tuple[List[Entry], List[Tuple[str, str]]]:
    """Parse a VIA file into entries; return (entries, skipped items).

    Images are looked up as ``img_dir/<filename>``. Records with the same
    file name are merged (VIA keeps one record per filename+size).
    """
    class_map = class_map if class_map is not None else {'damage': 1}
    if not osp.isfile(json_path):
        raise ConversionError(f'VIA file not found: {json_path}')
    if not osp.isdir(img_dir):
        raise ConversionError(f'image folder not found: {img_dir}')
    try:
        data = read_json(json_path)
    except (ValueError, RecursionError) as err:
        raise ConversionError(f'{json_path} is not valid JSON: {err}')
    entries: Dict[str, Entry] = {}
    skipped: List[Tuple[str, str]] = []
    for index, rec in enumerate(_records(data)):
        if not isinstance(rec, dict) or not isinstance(
                rec.get('filename'), str) or not rec['filename'].strip():
            skipped.append((f'record {index}', 'no "filename" string'))
            continue
        filename = rec['filename']
        image_path = osp.join(img_dir, filename)
        if osp.basename(filename) != filename or not osp.isfile(image_path):
            skipped.append((filename, f'image not found in {img_dir}'))
            continue
        stem = safe_stem(filename)
        entry = entries.get(filename)
        if entry is None:
            stems = {e.stem for e in entries.values()}
            if stem in stems:
                skipped.append((filename, f'output name "{stem}" already used'
                                          f' by another image'))
                continue
            entry = Entry(image_path, stem, [], split)
            entries[filename] = entry
        else:
            entry.problems.append('duplicate record merged')
        regions = rec.get('regions', [])
        if isinstance(regions, dict):
            regions = [regions[k] for k in sorted(
                regions, key=lambda k: (len(str(k)), str(k)))]
        if not isinstance(regions, list):
            entry.problems.append('"regions" is neither a list nor an object')
            continue
        for r_index, region in enumerate(regions):
            where = f'region {r_index}'
            if not isinstance(region, dict):
                entry.problems.append(f'{where} skipped: not an object')
                continue
            names = _class_names(region.get('region_attributes'), class_key)
            if not names:
                entry.problems.append(
                    f'{where} skipped: no "{class_key}" in region_attributes')
                continue
            known = [n for n in names if n in class_map]
            if not known:
                entry.problems.append(
                    f'{where} skipped: class {names[0]!r} not in the class '
                    f'map {sorted(class_map)}')
                continue
            class_id = class_map[known[0]]
            if class_id is SKIP:
                continue
            points, reason = _region_points(region.get('shape_attributes'))
            if points is None:
                entry.problems.append(f'{where} skipped: {reason}')
                continue
            entry.polygons.append(Polygon(class_id, points, where))
    # paint ignore (255) last so it is never overwritten by a class
    for entry in entries.values():
        entry.polygons.sort(key=lambda p: p.class_id == 255)
    return list(entries.values()), skipped
