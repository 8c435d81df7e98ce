"""``DamageSegmenter``: photos in, damage masks, probabilities and a report
out. One code path for a single model, an ensemble config or a distilled
student; ``tools/infer.py`` is a thin CLI over it.

Why not mmseg's ``MMSegInferencer``: it cannot take an ensemble (no
checkpoint), reads images without their EXIF orientation, and returns no
per-image damage report.

    >>> seg = DamageSegmenter('configs/segformer_b0_cardamage.py', 'b0.pth')
    >>> [result] = seg('car.jpg')
    >>> result.mask.shape, result.report['damage_share']
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from PIL import Image, ImageOps

from ..models.segmentors.probs import group_by_original_size, predict_probs

ImageLike = Union[str, np.ndarray]


class ImageReadError(ValueError):
    """An input image could not be read; the message names it."""


def read_image_rgb(path: str) -> np.ndarray:
    """Read any photo as RGB uint8 with its EXIF orientation applied.

    Grayscale, palette, RGBA/LA (alpha dropped), 16-bit and float images are
    converted (values: :func:`scale_to_uint8`).
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
                arr = np.asarray(img)
            else:
                return np.asarray(img.convert('RGB'))
    except Exception as err:
        raise ImageReadError(f'cannot read image {path}: '
                             f'{type(err).__name__}: {err}') from None
    return np.stack([scale_to_uint8(arr, path)] * 3, axis=-1)


def scale_to_uint8(arr: np.ndarray, name: str = 'array') -> np.ndarray:
    """Pixel values to uint8. uint8 is kept; floats with max <= 1 are read
    as [0, 1] (x 255), as is bool; other values up to 255 are kept; larger
    ones (16-bit) are scaled by the image's own maximum; negatives clip to
    0. NaN or inf raise :class:`ImageReadError` (they would become arbitrary
    bytes)."""
    if arr.dtype == np.uint8:
        return arr
    is_float = arr.dtype.kind in 'fb'  # bool: a mask, shown as 0 / 255
    arr = arr.astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise ImageReadError(f'{name}: image holds NaN or infinite values')
    peak = float(arr.max()) if arr.size else 0.0
    top = 1.0 if is_float and peak <= 1.0 else max(peak, 255.0)
    return (arr / top * 255.0).clip(0, 255).round().astype(np.uint8)


def to_rgb_array(image: np.ndarray, name: str = 'array') -> np.ndarray:
    """Normalise a numpy image (H, W), (H, W, 1|3|4), any int/float/bool
    dtype (RGB order assumed) to RGB uint8 (values: :func:`scale_to_uint8`).
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageReadError(f'{name}: shape {arr.shape} is not an image')
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    return np.ascontiguousarray(scale_to_uint8(arr, name))


@dataclass
class DamageResult:
    """What one image gives. ``mask``: (H, W) uint8 class ids at the
    original size; ``probs``: (C, H, W) float32 class probabilities;
    ``report``: the figures of one report line."""
    source: str
    mask: np.ndarray
    probs: np.ndarray
    report: Dict = field(default_factory=dict)


def damage_report(mask: np.ndarray, probs: Optional[np.ndarray],
                  classes: Sequence[str], min_region_fraction: float = 5e-4,
                  background_index: int = 0) -> Dict:
    """Figures of one image, computed from its mask (and probabilities).

    - ``damage_share``: fraction of the image's pixels predicted as any
      damage class; ``share.<class>`` per class.
    - ``regions``: connected components (8-connectivity) of each damage
      class with area >= ``min_region_fraction`` x image area:
      ``class, area_px, bbox=[x, y, w, h]``; ``num_regions`` counts them.
    - ``mean_confidence``: mean probability of the predicted class over all
      pixels; ``damage_confidence``: the same over damage pixels (None if
      there are none).
    """
    h, w = mask.shape
    total = float(h * w)
    report = dict(width=int(w), height=int(h))
    damage = mask != background_index
    report['damage_share'] = round(float(damage.sum()) / total, 6)
    min_area = max(1, int(round(min_region_fraction * total)))
    regions = []
    for cid, name in enumerate(classes):
        if cid == background_index:
            continue
        sel = (mask == cid).astype(np.uint8)
        report[f'share.{name}'] = round(float(sel.sum()) / total, 6)
        if not sel.any():
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(sel, connectivity=8)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            if area >= min_area:
                regions.append(dict(cls=name, area_px=area,
                                    bbox=[x, y, bw, bh]))
    report['num_regions'] = len(regions)
    report['regions'] = regions
    if probs is not None:
        conf = np.take_along_axis(probs, mask[None].astype(np.int64),
                                  axis=0)[0]
        report['mean_confidence'] = round(float(conf.mean()), 4)
        report['damage_confidence'] = (round(float(conf[damage].mean()), 4)
                                       if damage.any() else None)
    return report


class DamageSegmenter:
    """Load a model (or an ensemble config) once; segment many photos.

    Args:
        config (str): A config file (a single model, an ensemble or a
            distilled student).
        checkpoint (str, optional): Weights; not used by ensemble configs.
        device (str): 'cpu', 'cuda', 'cuda:1', ...
        tta (bool): Average with the horizontally flipped image.
        min_region_fraction (float): Smallest region counted in reports.
        cfg_options (dict, optional): Config overrides.
        amp (str, optional): 'auto', 'bf16' or 'fp16': autocast the
            forward pass (probabilities and masks come back in float32).
        compile (bool): ``torch.compile`` the network (single models); the
            first batch of each new shape pays the compilation.
        channels_last (bool): channels_last model and inputs.
    """

    def __init__(self, config: str, checkpoint: Optional[str] = None,
                 device: str = 'cpu', tta: bool = False,
                 min_region_fraction: float = 5e-4,
                 cfg_options: Optional[dict] = None,
                 amp: Optional[str] = None, compile: bool = False,
                 channels_last: bool = False) -> None:
        import cardamage_mmseg  # noqa: F401  (registers, safe loading)
        from cardamage_mmseg.utils.config import load_tool_config
        from cardamage_mmseg.engine.loops import AMP_DTYPES
        from cardamage_mmseg.utils.speed import resolve_amp
        init_default_scope('mmseg')
        cfg = load_tool_config(config, cfg_options)
        self.cfg = cfg
        self.device = device
        self.tta = tta
        self.min_region_fraction = min_region_fraction
        amp = resolve_amp(amp, training=False)
        if amp and amp == 'fp16' and not str(device).startswith('cuda'):
            raise ValueError(f'amp fp16 needs a CUDA device, not {device}')
        self.autocast_dtype = AMP_DTYPES.get(amp)
        model_cfg = cfg.model
        if model_cfg.get('type') == 'EnsembleSegmentor':
            from cardamage_mmseg.models.segmentors import EnsembleSegmentor
            kwargs = {k: v for k, v in model_cfg.items() if k != 'type'}
            kwargs['members'] = [dict(m, device=m.get('device', device))
                                 for m in kwargs['members']]
            kwargs['flip'] = kwargs.get('flip', False) or tta
            self.model = EnsembleSegmentor(**kwargs).eval()
            self.is_ensemble = True
            classes = self.model.classes
        else:
            from cardamage_mmseg.models.segmentors import build_member
            if not checkpoint:
                raise ValueError(f'{config}: a checkpoint is required for a '
                                 f'single model')
            self.model, classes = build_member(config, checkpoint, device,
                                               cfg_options)
            self.is_ensemble = False
        if (compile or channels_last) and self.is_ensemble:
            raise ValueError(f'{config}: compile/channels_last apply to one '
                             f'model, not to an ensemble')
        if channels_last:
            from cardamage_mmseg.engine import to_channels_last
            to_channels_last(self.model)
        if compile:
            from cardamage_mmseg.engine import compile_network
            compile_network(self.model)
        dataset_cfg = cfg.test_dataloader.dataset
        from mmseg.registry import DATASETS
        dataset_cls = DATASETS.get(dataset_cfg.type)
        meta = getattr(dataset_cls, 'METAINFO', {})
        self.classes = tuple(classes or meta.get('classes') or ())
        if not self.classes:
            raise ValueError(f'{config}: class names unknown')
        self.palette = meta.get('palette') if tuple(
            meta.get('classes', ())) == self.classes else None
        if not self.palette:
            rng = np.random.RandomState(0)
            self.palette = [[0, 0, 0]] + rng.randint(
                0, 255, (len(self.classes) - 1, 3)).tolist()
        steps = [t for t in dataset_cfg.pipeline if t['type'] not in (
            'LoadImageFromFile', 'LoadAnnotations', 'CheckSegSample')]
        self.pipeline = Compose([dict(type='LoadImageFromNDArray')] + steps)

    # ------------------------------------------------------------------
    def _prepare(self, rgb: np.ndarray, source: str):
        data = self.pipeline(dict(img=rgb[..., ::-1].copy(), img_path=None))
        sample = data['data_samples']
        sample.set_metainfo(dict(img_path=source))
        return data['inputs'], sample

    def predict_arrays(self, images: Sequence[np.ndarray],
                       sources: Sequence[str]) -> List[DamageResult]:
        """Segment RGB uint8 arrays (one forward per group of images with
        the same original size: same-shape inputs, stackable outputs)."""
        prepared = [self._prepare(img, src)
                    for img, src in zip(images, sources)]
        groups = group_by_original_size([sample for _, sample in prepared])
        results: List[Optional[DamageResult]] = [None] * len(prepared)
        autocast = torch.autocast(
            torch.device(self.device).type, dtype=self.autocast_dtype,
            enabled=self.autocast_dtype is not None)
        for idx in groups:
            inputs = [prepared[i][0] for i in idx]
            samples = [prepared[i][1] for i in idx]
            if self.is_ensemble:
                with autocast:
                    member = self.model.member_probs(inputs, samples)
                fused = self.model.fuse_batch(member.float())
                probs = [s for s, _ in fused]
                labels = [lab for _, lab in fused]
            else:
                with autocast:
                    p = predict_probs(self.model, inputs, samples,
                                      self.device, flip=self.tta)
                p = p.float()
                probs, labels = list(p), list(p.argmax(dim=1))
            for i, pr, lab in zip(idx, probs, labels):
                mask = lab.cpu().numpy().astype(np.uint8)
                pr = pr.float().cpu().numpy()
                results[i] = DamageResult(
                    sources[i], mask, pr,
                    damage_report(mask, pr, self.classes,
                                  self.min_region_fraction))
        return results

    def __call__(self, images: Union[ImageLike, Sequence[ImageLike]],
                 batch_size: int = 1) -> List[DamageResult]:
        """Segment a path, an RGB array, or a list of them."""
        if isinstance(images, (str, np.ndarray)):
            images = [images]
        results = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            arrays, sources = [], []
            for k, item in enumerate(chunk):
                if isinstance(item, str):
                    arrays.append(read_image_rgb(item))
                    sources.append(item)
                else:
                    sources.append(f'<array {start + k}>')
                    arrays.append(to_rgb_array(item, sources[-1]))
            results.extend(self.predict_arrays(arrays, sources))
        return results
