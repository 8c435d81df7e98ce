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

import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from .. import register  # noqa: F401  (registers the project's modules)
from ..core.image import ImageLike, ImageReadError, load_rgb, read_image_rgb
from ..core.palette import palette_for
from ..core.report import damage_report
from ..engine.amp import AMP_DTYPES, resolve_amp
from ..engine.speed_hooks import compile_network, to_channels_last
from ..models.frozen import load_frozen_model
from ..models.segmentors.ensemble import EnsembleSegmentor
from ..models.segmentors.probs import group_by_original_size, predict_probs
from ..utils.config import ConfigError, check_num_classes, load_config

__all__ = ['DamageResult', 'DamageSegmenter', 'ImageReadError',
           'damage_report', 'read_image_rgb']


@dataclass
class DamageResult:
    """What one image gives. ``mask``: (H, W) uint8 class ids at the
    original size; ``probs``: (C, H, W) float32 class probabilities;
    ``report``: the figures of one report line."""
    source: str
    mask: np.ndarray
    probs: np.ndarray
    report: Dict = field(default_factory=dict)


class DamageSegmenter:
    """Load a model (or an ensemble config) once; segment many photos.

    Args:
        config (str): A config file (a single model, an ensemble or a
            distilled student), or ``cardamage_mmseg::NAME`` for a config
            shipped with the package.
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
        strict (bool): The checkpoint (each ensemble member's, unless it
            says ``strict``) must fit the model exactly: missing,
            unexpected or mis-shaped keys raise ``CheckpointMismatchError``
            naming the checkpoint, the config and the first keys. ``False``
            loads what fits (the rest stays random): for debugging.

    Raises:
        ConfigError: (a ``ValueError``) the config cannot be used: not
            found, an optional package missing, head and data class counts
            that differ, a switch this device cannot run.
        FileNotFoundError: a checkpoint (or an ensemble member's) is
            missing.
        CheckpointError: a checkpoint that is unsafe, corrupt or does not
            fit (``strict``).
    """

    def __init__(self, config: str, checkpoint: Optional[str] = None,
                 device: str = 'cpu', tta: bool = False,
                 min_region_fraction: float = 5e-4,
                 cfg_options: Optional[dict] = None,
                 amp: Optional[str] = None, compile: bool = False,
                 channels_last: bool = False, strict: bool = True) -> None:
        init_default_scope('mmseg')
        cfg = load_config(config, cfg_options)
        check_num_classes(cfg, config)
        self.cfg = cfg
        self.device = device
        self.tta = tta
        self.min_region_fraction = min_region_fraction
        amp = resolve_amp(amp, training=False)
        if amp and amp == 'fp16' and not str(device).startswith('cuda'):
            raise ConfigError(f'amp fp16 needs a CUDA device, not {device}')
        self.autocast_dtype = AMP_DTYPES.get(amp)
        model_cfg = cfg.model
        if model_cfg.get('type') == 'EnsembleSegmentor':
            kwargs = {k: v for k, v in model_cfg.items() if k != 'type'}
            kwargs['members'] = [dict(m, device=m.get('device', device),
                                      strict=m.get('strict', strict))
                                 for m in kwargs['members']]
            kwargs['flip'] = kwargs.get('flip', False) or tta
            self.model = EnsembleSegmentor(**kwargs).eval()
            self.is_ensemble = True
            classes = self.model.classes
        else:
            if not checkpoint:
                raise ConfigError(f'{config}: a checkpoint is required for '
                                  f'a single model')
            self.model, classes = load_frozen_model(cfg, checkpoint, device,
                                                    strict=strict)
            self.is_ensemble = False
        if (compile or channels_last) and self.is_ensemble:
            raise ConfigError(f'{config}: compile/channels_last apply to '
                              f'one model, not to an ensemble')
        if channels_last:
            to_channels_last(self.model)
        if compile:
            compile_network(self.model)
        dataset_cfg = cfg.test_dataloader.dataset
        dataset_cls = DATASETS.get(dataset_cfg.type)
        meta = getattr(dataset_cls, 'METAINFO', {})
        self.classes = tuple(classes or meta.get('classes') or ())
        if not self.classes:
            raise ConfigError(f'{config}: class names unknown')
        known = tuple(meta.get('classes', ())) == self.classes
        self.palette = (meta.get('palette') if known else None) or \
            palette_for(self.classes)
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
        """Segment one photo or a list (or tuple) of them: paths (``str``
        or ``pathlib.Path``), PIL images, numpy arrays (RGB), encoded
        bytes or binary file objects (:func:`~..core.image.load_rgb`)."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        results = []
        for start in range(0, len(images), batch_size):
            loaded = [load_rgb(item, start + k) for k, item in
                      enumerate(images[start:start + batch_size])]
            results.extend(self.predict_arrays([a for a, _ in loaded],
                                               [s for _, s in loaded]))
        return results
