"""Shared machinery of the annotation converters.

A converter turns one *entry* (an image and its polygons, already mapped to
class ids) into ``img_dir/<split>/<stem>.jpg`` and
``ann_dir/<split>/<stem>.png``:

- the image is read with its EXIF orientation applied and written without
  it, so image and mask line up in every reader;
- polygons are rasterised with ``cv2.fillPoly`` at the output resolution
  (scaled coordinates, so a resized mask is exact, not a nearest-neighbour
  copy), in the entry's order: a later polygon overwrites an earlier one;
- every file is written to a temporary name and renamed, so a killed run
  never leaves a truncated file, and a re-run skips finished pairs;
- a bad polygon or image is skipped and reported with its reason.
"""
import hashlib
import json
import math
import os
import os.path as osp
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageOps

from ...core import masks
from ...core.files import DISK_ERRNOS, atomic_write_bytes, is_temporary
from ...core.image import encode_image
from ...core.image import pil_to_rgb
from ...utils.deprecation import moved_names

__getattr__ = moved_names(__name__, {
    'save_mask': 'cardamage_mmseg.core.masks:save_mask'})

#: Points may lie this far outside the image (annotation tools snap to the
#: border); they are clipped. Farther out, the polygon is rejected.
BORDER_TOLERANCE = 2.0


class ConversionError(RuntimeError):
    """The input as a whole cannot be converted (wrong folder, empty, ...)."""


class WriteError(ConversionError):
    """The output cannot be written at all (a full disk, a quota): the run
    stops (with its report, where that can still be written)."""



@dataclass
class Polygon:
    """A polygon in source-image pixels and the class id it paints."""
    class_id: int
    points: np.ndarray  # (N, 2) float, x then y
    source: str = ''  # where it came from, for reports


@dataclass
class Entry:
    """One image to convert."""
    image_path: str
    stem: str
    polygons: List[Polygon]
    split: str = 'train'
    # (width, height) the annotation coordinates refer to, if known
    annotated_size: Optional[Tuple[int, int]] = None
    problems: List[str] = field(default_factory=list)


@dataclass
class EntryResult:
    stem: str
    status: str  # 'written' | 'exists' | 'skipped'
    polygons: int = 0
    problems: List[str] = field(default_factory=list)


def check_polygon(points: np.ndarray, width: int,
                  height: int) -> Tuple[Optional[np.ndarray], str]:
    """Return (clipped points, '') or (None, reason)."""
    if points.ndim != 2 or points.shape[1] != 2:
        return None, f'malformed point list of shape {points.shape}'
    if len(points) < 3:
        return None, f'polygon with {len(points)} point(s), need >= 3'
    if not np.all(np.isfinite(points)):
        return None, 'polygon with non-finite coordinates'
    tol = BORDER_TOLERANCE
    outside = ((points[:, 0] < -tol) | (points[:, 0] > width + tol) |
               (points[:, 1] < -tol) | (points[:, 1] > height + tol))
    if outside.any():
        x, y = points[outside][0]
        return None, (f'point ({x:g}, {y:g}) outside the {width}x{height} '
                      f'image')
    clipped = points.copy()
    clipped[:, 0] = np.clip(clipped[:, 0], 0, width)
    clipped[:, 1] = np.clip(clipped[:, 1], 0, height)
    return clipped, ''


def rasterize(polygons: Sequence[Polygon], out_size: Tuple[int, int],
              scale: Tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Paint polygons (in order) into a uint8 mask of ``out_size`` (w, h).

    Pixel centres are at integer coordinates; a vertex at ``x`` in source
    pixels maps to ``x * sx`` in the output.
    """
    width, height = out_size
    mask = np.zeros((height, width), dtype=np.uint8)
    sx, sy = scale
    for poly in polygons:
        pts = poly.points * np.array([sx, sy])
        # cv2 works in fixed point: 4 fractional bits keep sub-pixel vertices
        pts_fixed = np.round(pts * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts_fixed], int(poly.class_id),
                     lineType=cv2.LINE_8, shift=4)
    return mask


def read_image(path: str, annotated_size: Optional[Tuple[int, int]] = None
               ) -> Tuple[Image.Image, str]:
    """Open an image in the frame its annotations refer to.

    EXIF orientation is applied (as browsers and annotation tools display
    it), unless ``annotated_size`` matches the raw, un-rotated size only.
    Returns the RGB image and a note ('' when nothing special happened).
    Pixel values follow the inference rule (:func:`~...core.image.
    pil_to_rgb`): 16-bit and float images are scaled, not saturated.
    """
    with Image.open(path) as raw:
        raw.load()
        oriented = ImageOps.exif_transpose(raw)
        note = ''
        if annotated_size is not None and oriented.size != annotated_size:
            if raw.size != annotated_size:
                raise ValueError(
                    f'annotation says {annotated_size[0]}x{annotated_size[1]}'
                    f' but the image is {oriented.size[0]}x'
                    f'{oriented.size[1]}')
            oriented = raw
            note = 'EXIF rotation not applied: labels use the raw frame'
        elif oriented.size != raw.size:
            note = 'EXIF orientation applied'
        img = Image.fromarray(pil_to_rgb(oriented, path))
    return img, note


def save_jpeg(img: Image.Image, path: str, quality: int = 95) -> None:
    atomic_write_bytes(path, encode_image(img, 'JPEG', quality=quality))


def convert_entry(entry: Entry, out_root: str, size: int = 0,
                  overwrite: bool = False) -> EntryResult:
    """Write one image/mask pair; never raises for a bad entry."""
    img_out = osp.join(out_root, 'img_dir', entry.split, entry.stem + '.jpg')
    ann_out = osp.join(out_root, 'ann_dir', entry.split, entry.stem + '.png')
    problems = list(entry.problems)
    if not overwrite and osp.isfile(img_out) and osp.isfile(ann_out):
        return EntryResult(entry.stem, 'exists', problems=problems)
    try:
        img, note = read_image(entry.image_path, entry.annotated_size)
    except Exception as err:  # unreadable, truncated, not an image
        return EntryResult(entry.stem, 'skipped', problems=problems + [
            f'image {entry.image_path} skipped: {type(err).__name__}: '
            f'{err}'])
    if note:
        problems.append(note)
    width, height = img.size
    kept = []
    for poly in entry.polygons:
        pts, reason = check_polygon(np.asarray(poly.points, dtype=np.float64),
                                    width, height)
        if pts is None:
            problems.append(f'{poly.source or "polygon"} skipped: {reason}')
        else:
            kept.append(Polygon(poly.class_id, pts, poly.source))
    if size > 0:
        out_w = out_h = size
        interp = (Image.Resampling.BOX if size < min(width, height) else
                  Image.Resampling.BILINEAR)  # area when shrinking
        img = img.resize((size, size), interp)
    else:
        out_w, out_h = width, height
    mask = rasterize(kept, (out_w, out_h), (out_w / width, out_h / height))
    try:
        save_jpeg(img, img_out)
        masks.save_mask(mask, ann_out)
    except OSError as err:
        if err.errno in DISK_ERRNOS:
            raise WriteError(f'cannot write {err.filename or img_out}: '
                             f'{err.strerror or err}') from None
        return EntryResult(entry.stem, 'skipped', problems=problems + [
            f'image {entry.image_path} skipped: cannot write its outputs: '
            f'{err}'])
    return EntryResult(entry.stem, 'written', len(kept), problems)


def _convert_star(args) -> EntryResult:
    return convert_entry(*args)


@dataclass
class Summary:
    written: int = 0
    existing: int = 0
    skipped: int = 0
    polygons: int = 0
    per_split: Dict[str, int] = field(default_factory=dict)
    problems: List[Tuple[str, str]] = field(default_factory=list)
    report_path: str = ''

    def add(self, result: EntryResult, split: str) -> None:
        if result.status == 'written':
            self.written += 1
            self.per_split[split] = self.per_split.get(split, 0) + 1
        elif result.status == 'exists':
            self.existing += 1
            self.per_split[split] = self.per_split.get(split, 0) + 1
        else:
            self.skipped += 1
        self.polygons += result.polygons
        self.problems.extend((result.stem, p) for p in result.problems)

    def as_dict(self) -> dict:
        return dict(written=self.written, already_present=self.existing,
                    skipped_images=self.skipped, polygons=self.polygons,
                    per_split=self.per_split,
                    problems=[dict(item=s, reason=r)
                              for s, r in self.problems])

    def report(self) -> str:
        lines = [f'images written: {self.written}, already present: '
                 f'{self.existing}, skipped: {self.skipped}, polygons: '
                 f'{self.polygons}',
                 'per split: ' + ', '.join(
                     f'{k}={v}' for k, v in sorted(self.per_split.items()))]
        if self.problems:
            lines.append(f'{len(self.problems)} problem(s):')
            lines += [printable(f'  {s}: {r}') for s, r in self.problems[:50]]
            if len(self.problems) > 50:
                lines.append(f'  ... {len(self.problems) - 50} more in the '
                             f'JSON report')
        return '\n'.join(lines)


def run_conversion(entries: List[Entry], out_root: str, size: int = 0,
                   nproc: int = 1, overwrite: bool = False,
                   unmatched: Iterable[Tuple[str, str]] = (),
                   desc: str = 'converting') -> Summary:
    """Convert all entries with a progress bar; write the JSON report."""
    from tqdm import tqdm
    removed = remove_stale_temporaries(out_root)
    summary = Summary()
    if removed:
        summary.problems.append(
            ('(output)', f'removed {removed} partial file(s) left by an '
                         f'interrupted run'))
    unmatched = list(unmatched)
    summary.problems.extend(unmatched)
    summary.skipped += len(unmatched)  # images; not the removed partials
    split_of = {e.stem: e.split for e in entries}
    tasks = [(e, out_root, size, overwrite) for e in entries]
    stopped = None
    try:
        if nproc > 1 and len(tasks) > 1:
            with Pool(nproc) as pool:
                results = pool.imap_unordered(_convert_star, tasks,
                                              chunksize=4)
                for res in tqdm(results, total=len(tasks), desc=desc,
                                unit='img'):
                    summary.add(res, split_of[res.stem])
        else:
            for task in tqdm(tasks, desc=desc, unit='img'):
                res = _convert_star(task)
                summary.add(res, split_of[res.stem])
    except WriteError as err:
        stopped = err
    splits = '-'.join(sorted({e.split for e in entries})) or 'none'
    report = osp.join(out_root, f'conversion_report_{splits}.json')
    summary.report_path = report
    try:
        os.makedirs(out_root, exist_ok=True)
        atomic_write_bytes(report, json.dumps(
            summary.as_dict(), indent=1, ensure_ascii=False).encode(
                'utf-8', 'backslashreplace'))  # undecodable names visible
        where = f'the report of what finished: {report}'
    except OSError as err:
        if stopped is None:
            raise WriteError(f'cannot write the report {report}: '
                             f'{err}') from None
        where = f'the report could not be written either ({err})'
    if stopped is not None:
        raise WriteError(f'stopped after {summary.written} written '
                         f'image(s): {stopped}; {where}. Free some space '
                         f'and run the same command again: finished pairs '
                         f'are kept') from None
    return summary


def remove_stale_temporaries(out_root: str) -> int:
    """Delete the temporary files (:func:`~...core.files.is_temporary`:
    ``.tmp-*.part``) a killed run left in ``img_dir``/``ann_dir``; a
    photo whose own name starts with ``.tmp-`` is not one. Do not run two
    conversions into one folder at the same time."""
    removed = 0
    for sub in ('img_dir', 'ann_dir'):
        for root, _, names in os.walk(osp.join(out_root, sub)):
            for name in names:
                if is_temporary(name):
                    os.remove(osp.join(root, name))
                    removed += 1
    return removed


#: longest output stem in UTF-8 bytes (file systems allow 255 per name,
#: less the suffix and the temporary file's prefix and suffix)
MAX_STEM_BYTES = 200


def safe_stem(name: str) -> str:
    """File stem usable on every file system: keeps unicode; '/', '\\',
    reserved characters and undecodable bytes become '_'; a leading '.'
    too (no hidden outputs); stems longer than :data:`MAX_STEM_BYTES` are
    cut and end in a hash of the full name (still unique)."""
    stem = osp.splitext(osp.basename(name))[0]
    stem = stem.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
    stem = ''.join('_' if c in '\\/:*?"<>|\0\ufffd' else c
                   for c in stem) or '_'
    if stem.startswith('.'):
        stem = '_' + stem[1:]
    data = stem.encode('utf-8')
    if len(data) > MAX_STEM_BYTES:
        digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
        cut = data[:MAX_STEM_BYTES - 13].decode('utf-8', 'ignore')
        stem = f'{cut}_{digest}'
    return stem


def read_json(path: str):
    """A JSON file as written by any tool: UTF-8 with or without a byte
    order mark (Windows editors add one); undecodable bytes are replaced.
    Raises ``ValueError`` for invalid JSON."""
    with open(path, 'rb') as f:
        return json.loads(f.read().decode('utf-8-sig', 'replace'))


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes shown as escapes (print
    and JSON writers fail on them)."""
    return text.encode('utf-8', 'backslashreplace').decode('utf-8')


def finite_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
