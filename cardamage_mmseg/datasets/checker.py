"""Check a data set in the mmseg layout and report every problem at once.

Unlike the dataset (which stops at the first bad sample), the checker reads
every pair and lists all problems: missing folders, images without masks,
masks without images, unreadable files, RGB masks, size mismatches,
out-of-range values, a split whose only non-background label is the
ignore index (damage painted 255, as 0/255 binary masks do), and leaks
between splits: a photo name in two splits, or the same image (identical
bytes) in two splits under different names.
"""
import hashlib
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..core.files import is_temporary
from ..core.image import orientation_problem
from ..core.masks import out_of_range_values


#: the name of the report on leaks between splits
ACROSS_SPLITS = 'across splits'


@dataclass
class SplitReport:
    split: str
    images: int = 0
    damage_pixel_share: float = 0.0
    class_pixels: Dict[int, int] = field(default_factory=dict)
    problems: List[Tuple[str, str]] = field(default_factory=list)


def _files(folder: str, suffix: str) -> Dict[str, str]:
    """{name without suffix: path} of the files ending in ``suffix`` in any
    case (``UPPER.JPG`` is an image, as the dataset reads it), without
    temporary files of an interrupted conversion."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name.lower().endswith(suffix.lower()) and \
                    not is_temporary(name):
                path = osp.join(root, name)
                out[osp.relpath(path, folder)[:-len(suffix)]] = path
    return out


def check_split(data_root: str, split: str, num_classes: int,
                img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                ignore_index: int = 255, progress: bool = False
                ) -> SplitReport:
    """Check ``img_dir/<split>`` against ``ann_dir/<split>``."""
    report = SplitReport(split)
    img_dir = osp.join(data_root, 'img_dir', split)
    ann_dir = osp.join(data_root, 'ann_dir', split)
    for folder in (img_dir, ann_dir):
        if not osp.isdir(folder):
            report.problems.append((folder, 'folder does not exist'))
    if report.problems:
        return report
    images = _files(img_dir, img_suffix)
    masks = _files(ann_dir, seg_map_suffix)
    if not images:
        report.problems.append((img_dir, f'no *{img_suffix} images'))
    for key in sorted(set(masks) - set(images)):
        report.problems.append((masks[key], 'mask without image'))
    keys = sorted(images)
    if progress:
        from tqdm import tqdm
        keys = tqdm(keys, desc=f'checking {split}', unit='img')
    counts = np.zeros(256, dtype=np.int64)
    for key in keys:
        img_path = images[key]
        if key not in masks:
            report.problems.append((img_path, 'image without mask'))
            continue
        report.images += 1
        try:
            with Image.open(img_path) as im:
                im.verify()  # catches truncated/corrupt files
            with Image.open(img_path) as im:
                img_size = im.size
        except Exception as err:
            report.problems.append((img_path, f'unreadable image: {err}'))
            continue
        try:
            with Image.open(masks[key]) as m:
                mode = m.mode
                seg = np.asarray(m)
        except Exception as err:
            report.problems.append((masks[key], f'unreadable mask: {err}'))
            continue
        if seg.ndim != 2 or mode not in ('L', 'P', 'I', 'I;16'):
            report.problems.append(
                (masks[key], f'mask is {mode} with shape {seg.shape}; '
                             f'expected single-channel class ids'))
            continue
        problem = orientation_problem(img_path, masks[key])
        if problem:
            report.problems.append((img_path, problem))
            continue
        if (seg.shape[1], seg.shape[0]) != img_size:
            report.problems.append(
                (masks[key], f'mask {seg.shape[1]}x{seg.shape[0]} != image '
                             f'{img_size[0]}x{img_size[1]}'))
            continue
        values, freq = np.unique(seg, return_counts=True)
        bad = out_of_range_values(values, num_classes, ignore_index)
        if bad.size:
            report.problems.append(
                (masks[key], f'values {bad.tolist()[:10]} outside '
                             f'0..{num_classes - 1} (ignore {ignore_index})'))
            continue
        counts[values.clip(0, 255).astype(np.int64)] += freq
    report.class_pixels = {int(i): int(c) for i, c in enumerate(counts) if c}
    valid = sum(c for i, c in report.class_pixels.items()
                if i != ignore_index)
    foreground = sum(c for i, c in report.class_pixels.items()
                     if 0 < i < num_classes)
    if valid:
        report.damage_pixel_share = float(foreground / valid)
    ignored = report.class_pixels.get(ignore_index, 0)
    if ignored and not foreground:
        report.problems.append((ann_dir, (
            f'no mask holds a class id 1..{num_classes - 1}, but {ignored} '
            f'pixels are {ignore_index} (the ignore index, never trained '
            f'on): is damage painted {ignore_index}? write it as 1')))
    return report


def check_across_splits(data_root: str, splits: Sequence[str],
                        img_suffix: str = '.jpg') -> SplitReport:
    """Leaks between splits (a test photo in training inflates every
    score): a name in several splits, and identical image files (SHA-256
    of the bytes) in several splits under different names."""
    report = SplitReport(ACROSS_SPLITS)
    where: Dict[str, List[str]] = {}
    same: Dict[str, List[Tuple[str, str]]] = {}
    for split in splits:
        folder = osp.join(data_root, 'img_dir', split)
        if not osp.isdir(folder):
            continue
        for key, path in sorted(_files(folder, img_suffix).items()):
            where.setdefault(key, []).append(split)
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            same.setdefault(digest, []).append((split, path))
    for key, found in sorted(where.items()):
        if len(found) > 1:
            report.problems.append((key, f'in {len(found)} splits '
                                         f'({", ".join(found)}): keep it in '
                                         f'one'))
    for copies in same.values():
        names = {osp.basename(p) for _, p in copies}
        if len({s for s, _ in copies}) > 1 and len(names) > 1:
            (split, path), rest = copies[0], copies[1:]
            others = ', '.join(f'{p} ({s})' for s, p in rest)
            report.problems.append((path, f'same image as {others}: one '
                                          f'photo in two splits under '
                                          f'different names'))
    return report


def check_dataset(data_root: str, splits: Sequence[str] = ('train', 'val',
                                                           'test'),
                  num_classes: int = 2, progress: bool = False,
                  **kwargs) -> List[SplitReport]:
    """One report per split, then :func:`check_across_splits`."""
    reports = [check_split(data_root, s, num_classes, progress=progress,
                           **kwargs) for s in splits]
    reports.append(check_across_splits(
        data_root, splits, kwargs.get('img_suffix', '.jpg')))
    return reports


def format_reports(reports: Sequence[SplitReport],
                   limit: Optional[int] = None) -> str:
    lines = []
    for rep in reports:
        if rep.split == ACROSS_SPLITS:
            lines.append(f'[{rep.split}] {len(rep.problems)} problem(s)')
        else:
            lines.append(f'[{rep.split}] {rep.images} image/mask pairs, '
                         f'damage share {rep.damage_pixel_share:.2%}, '
                         f'{len(rep.problems)} problem(s)')
        shown = rep.problems if limit is None else rep.problems[:limit]
        lines += [f'  {path}: {why}' for path, why in shown]
        if len(shown) < len(rep.problems):
            lines.append(f'  ... {len(rep.problems) - len(shown)} more')
    return '\n'.join(lines)
