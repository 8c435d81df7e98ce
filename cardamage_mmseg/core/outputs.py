"""What a run writes per photo and for the whole run.

Under the output folder, for a photo with output name ``<name>``::

    masks/<name>.png       class ids (palette PNG), original resolution
    overlays/<name>.jpg    colour overlay with a legend (unless turned off)
    reports/<name>.json    the photo's report line (+ its source file)
    probs/<name>.npy       only if asked: (C, h, w) float16 class scores
                           at the model's resolution (``numpy.load``)

and ``report.csv`` / ``report.json`` with one row per photo. Every file is
written atomically, its size checked (a full disk is an ``OSError``, never
a truncated file).

Reuse rule: a photo's report records its source file (absolute path, size,
modification time) and the model that made it (:func:`model_identity`); a
re-run reuses the outputs only when all of them are unchanged.
"""
import csv
import hashlib
import io
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .files import atomic_write_bytes
from .image import encode_image
from .masks import save_mask
from .overlay import add_legend, overlay, shrink_for_display
from .result import finish
from .upsample import Combine

#: longest side of an overlay by default (a view for people; the mask keeps
#: the photo's size)
OVERLAY_MAX_SIDE = 1000


def file_identity(path: str) -> Dict:
    """What identifies a file's content cheaply: absolute path, size and
    modification time (ns)."""
    st = os.stat(path)
    return dict(source=osp.abspath(path), source_size=st.st_size,
                source_mtime_ns=st.st_mtime_ns)


def model_identity(parts: Iterable[str], files: Iterable[str] = ()) -> str:
    """A short hash of ``parts`` (a config's text, settings that change
    masks or reports) and of each file's identity (checkpoints): the same
    model, the same string."""
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode('utf-8', 'backslashreplace') + b'\0')
    for path in files:
        if path and osp.isfile(path):
            h.update(json.dumps(file_identity(path)).encode(
                'utf-8', 'backslashreplace'))
        else:
            h.update(str(path).encode('utf-8', 'backslashreplace'))
    return h.hexdigest()[:16]


def output_paths(out: str, name: str) -> Tuple[str, str, str]:
    """(mask, overlay, report) paths of output name ``name``."""
    return (osp.join(out, 'masks', name + '.png'),
            osp.join(out, 'overlays', name + '.jpg'),
            osp.join(out, 'reports', name + '.json'))


def probs_path(out: str, name: str) -> str:
    """Path of the model-resolution scores of ``name`` (``--save-probs``).
    """
    return osp.join(out, 'probs', name + '.npy')


def finished_report(out: str, name: str, path: str,
                    model: str = '', overlay: bool = True,
                    probs: bool = False) -> Optional[Dict]:
    """The report of ``path`` if its outputs under ``name`` (the overlay
    and the scores only if asked for) are all there and were made from
    that very file (path, size, modification time) by ``model``
    (:func:`model_identity`), else None (also for a report that cannot be
    read: the image is redone)."""
    mask_path, overlay_path, report_path = output_paths(out, name)
    paths = [mask_path, report_path] + [overlay_path] * overlay + \
        [probs_path(out, name)] * probs
    if not all(osp.isfile(p) for p in paths):
        return None
    try:
        with open(report_path, encoding='utf-8') as f:
            report = json.load(f)
        current = file_identity(path)
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.pop('model', None) != model:
        return None
    for key, value in current.items():
        if report.pop(key, None) != value:
            return None
    return report


def _json_bytes(obj, indent: Optional[int] = None) -> bytes:
    # file names may hold undecodable bytes (surrogates): keep them visible
    return json.dumps(obj, indent=indent, ensure_ascii=False).encode(
        'utf-8', 'backslashreplace')


def write_outputs(out: str, name: str, source: str, rgb: np.ndarray,
                  mask: np.ndarray, report: Dict, classes: Sequence[str],
                  palette: Sequence[Sequence[int]],
                  opacity: float = 0.5, model: str = '',
                  overlay_max_side: Optional[int] = OVERLAY_MAX_SIDE,
                  probs: Optional[np.ndarray] = None) -> None:
    """Write the mask (the photo's size), the overlay (longest side at most
    ``overlay_max_side``, 0: the photo's size, None: no overlay; titled
    with the damage share and the region count), the report and, if given,
    the model-resolution scores ``probs`` (float16 ``.npy``) of one photo.
    The report records the source file's identity and ``model`` (the
    reuse rule); a photo given as an array (no file) is never reused."""
    mask_path, overlay_path, report_path = output_paths(out, name)
    save_mask(mask, mask_path, palette, num_values=len(classes))
    if overlay_max_side is not None:
        pct = report['damage_share'] * 100
        small_rgb, small_mask = shrink_for_display(rgb, mask,
                                                   overlay_max_side)
        drawn = add_legend(
            overlay(small_rgb, small_mask, palette, opacity), classes,
            palette, f'damage {pct:.1f}%, {report["num_regions"]} region(s)')
        atomic_write_bytes(overlay_path, encode_image(
            Image.fromarray(drawn), 'JPEG', quality=90))
    if probs is not None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(probs, np.float16))
        atomic_write_bytes(probs_path(out, name), buf.getvalue())
    try:
        identity = file_identity(source)
    except OSError:
        identity = dict(source=source)
    atomic_write_bytes(report_path, _json_bytes(
        dict(report, model=model, **identity)))


def write_summary(out: str, rows: List[Dict],
                  classes: Sequence[str]) -> None:
    """``report.json`` (rows as they are) and ``report.csv`` (one column
    per figure, regions as JSON) of a run."""
    share_cols = [f'share.{c}' for c in classes[1:]]
    cols = ['file', 'status', 'width', 'height', 'damage_share',
            *share_cols, 'num_regions', 'mean_confidence',
            'damage_confidence', 'regions', 'error']
    atomic_write_bytes(osp.join(out, 'report.json'), _json_bytes(rows, 1))
    text = io.StringIO(newline='')
    writer = csv.DictWriter(text, fieldnames=cols, extrasaction='ignore')
    writer.writeheader()
    for row in rows:
        row = dict(row)
        row['regions'] = json.dumps(row.get('regions', []))
        writer.writerow(row)
    atomic_write_bytes(osp.join(out, 'report.csv'), text.getvalue().encode(
        'utf-8', 'backslashreplace'))


@dataclass
class WriteTask:
    """Everything a writer process needs to finish and write one photo
    (:func:`write_photo`): small (model-size log-probabilities, a reduced
    view of the photo), picklable."""
    out: str
    name: str
    source: str
    log_probs: np.ndarray
    size: Tuple[int, int]
    rgb: np.ndarray
    combine: Combine
    classes: Sequence[str]
    palette: Sequence[Sequence[int]]
    min_region_fraction: float
    opacity: float
    model: str
    #: None: no overlay
    overlay_max_side: Optional[int]
    save_probs: bool = False


def write_photo(task: WriteTask) -> Dict:
    """Finish one photo (mask at its size, report) and write its outputs;
    returns its ``ok`` report row."""
    result = finish(task.log_probs, task.size, task.source, task.combine,
                    task.classes, task.min_region_fraction)
    write_outputs(task.out, task.name, task.source, task.rgb, result.mask,
                  result.report, task.classes, task.palette, task.opacity,
                  task.model, task.overlay_max_side,
                  result.probs if task.save_probs else None)
    return dict(file=task.source, status='ok', **result.report)
