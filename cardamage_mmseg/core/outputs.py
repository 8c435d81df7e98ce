"""What a run writes per photo and for the whole run.

Under the output folder, for a photo with output name ``<name>``::

    masks/<name>.png       class ids (palette PNG), original resolution
    overlays/<name>.jpg    colour overlay with a legend
    reports/<name>.json    the photo's report line (+ its source file)

and ``report.csv`` / ``report.json`` with one row per photo. Every file is
written atomically. A report records the absolute path of its source, so a
re-run reuses outputs only when they were made from the same file.
"""
import csv
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .files import atomic_write
from .masks import save_mask
from .overlay import add_legend, overlay


def output_paths(out: str, name: str) -> Tuple[str, str, str]:
    """(mask, overlay, report) paths of output name ``name``."""
    return (osp.join(out, 'masks', name + '.png'),
            osp.join(out, 'overlays', name + '.jpg'),
            osp.join(out, 'reports', name + '.json'))


def finished_report(out: str, name: str, path: str) -> Optional[Dict]:
    """The report of ``path`` if its outputs under ``name`` are all there
    and were made from that file, else None (also for a report that
    cannot be read: the image is redone)."""
    paths = output_paths(out, name)
    if not all(osp.isfile(p) for p in paths):
        return None
    try:
        with open(paths[2]) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or \
            report.pop('source', None) != osp.abspath(path):
        return None
    return report


def write_outputs(out: str, name: str, source: str, rgb: np.ndarray,
                  mask: np.ndarray, report: Dict, classes: Sequence[str],
                  palette: Sequence[Sequence[int]],
                  opacity: float = 0.5) -> None:
    """Write the mask, the overlay (titled with the damage share and the
    region count) and the report of one photo."""
    mask_path, overlay_path, report_path = output_paths(out, name)
    save_mask(mask, mask_path, palette)
    pct = report['damage_share'] * 100
    drawn = add_legend(
        overlay(rgb, mask, palette, opacity), classes, palette,
        f'damage {pct:.1f}%, {report["num_regions"]} region(s)')
    atomic_write(overlay_path, lambda p: Image.fromarray(drawn).save(
        p, format='JPEG', quality=90))
    # the source file is recorded: a re-run only reuses outputs of the
    # same file (a changed list could map another image to this name)
    atomic_write(report_path, lambda p: open(p, 'w').write(json.dumps(
        dict(report, source=osp.abspath(source)))))


def write_summary(out: str, rows: List[Dict],
                  classes: Sequence[str]) -> None:
    """``report.json`` (rows as they are) and ``report.csv`` (one column
    per figure, regions as JSON) of a run."""
    share_cols = [f'share.{c}' for c in classes[1:]]
    cols = ['file', 'status', 'width', 'height', 'damage_share',
            *share_cols, 'num_regions', 'mean_confidence',
            'damage_confidence', 'regions', 'error']
    atomic_write(osp.join(out, 'report.json'), lambda p: open(
        p, 'w').write(json.dumps(rows, indent=1)))

    def write_csv(p):
        with open(p, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=cols,
                                    extrasaction='ignore')
            writer.writeheader()
            for row in rows:
                row = dict(row)
                row['regions'] = json.dumps(row.get('regions', []))
                writer.writerow(row)

    atomic_write(osp.join(out, 'report.csv'), write_csv)
