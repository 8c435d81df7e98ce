"""``DamageSegmenter``: photos in, damage masks, probabilities and a report
out. One code path for a single model, an ensemble config or a distilled
student; ``tools/infer.py`` is a thin CLI over it.

Why not mmseg's ``MMSegInferencer``: it cannot take an ensemble (no
checkpoint), reads images without their EXIF orientation, and returns no
per-image damage report.

    >>> seg = DamageSegmenter('configs/segformer_b0_cardamage.py', 'b0.pth')
    >>> [result] = seg('car.jpg')
    >>> result.mask.shape, result.report['damage_share']

Memory: the model runs at its input size; the mask at the photo's size comes
from the model-size log-probabilities by bilinear upsampling in bands of
rows (:mod:`~cardamage_mmseg.core.upsample`: the same mask and confidence
as mmseg's resize-then-argmax, without a float map of every class at the
photo's size). Photos more elongated than 4:1 go through the model in
windows (:mod:`~cardamage_mmseg.core.tiles`). Photos above ``max_pixels``
are refused (:class:`ImageReadError`).
"""
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from .. import register  # noqa: F401  (registers the project's modules)
from ..core.image import MAX_PIXELS, ImageReadError, read_image_rgb
from ..core.outputs import model_identity
from ..core.palette import palette_for
from ..core.report import damage_report
from ..core.result import DamageResult
from ..core.segmenter import PhotoSegmenter, Prepared
from ..core.tiles import MAX_ASPECT, max_aspect_for
from ..core.upsample import softmax_mean
from ..engine.amp import AMP_DTYPES, resolve_amp
from ..engine.speed_hooks import compile_network, to_channels_last
from ..models.frozen import load_frozen_model
from ..models.segmentors.ensemble import EnsembleSegmentor
from ..models.segmentors.probs import predict_log_probs
from ..runtime import OnnxSegmenter, is_onnx_file
from ..utils.config import ConfigError, check_num_classes, load_config

#: pipeline steps that treat every channel alike (see ``_prepare``)
CHANNEL_BLIND_STEPS = ('Resize', 'Pad', 'PackSegInputs')

__all__ = ['DamageResult', 'DamageSegmenter', 'ImageReadError', 'Prepared',
           'damage_report', 'read_image_rgb']


class DamageSegmenter(PhotoSegmenter):
    """Load a model (or an ensemble config) once; segment many photos.

    ``DamageSegmenter('model.onnx', ...)`` gives the exported model's
    torch-free runtime instead (:class:`~..runtime.OnnxSegmenter`: the
    same methods and results).

    Args:
        config (str): A config file (a single model, an ensemble or a
            distilled student), or ``cardamage_mmseg::NAME`` for a config
            shipped with the package; or an exported ``.onnx`` file.
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
        full_probs (bool): ``DamageResult.probs`` at the photo's size
            (C x H x W floats: 1.2 GB for 3 classes of a 100 MP photo)
            instead of the model's.
        max_pixels (int): Photos above this many pixels are refused
            (``ImageReadError``); default 100 MP, 0 for no limit.
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

    def __new__(cls, config: str = '', *args, **kwargs):
        if cls is DamageSegmenter and is_onnx_file(config):
            return OnnxSegmenter(config, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, config: str, checkpoint: Optional[str] = None,
                 device: str = 'cpu', tta: bool = False,
                 min_region_fraction: float = 5e-4,
                 cfg_options: Optional[dict] = None,
                 amp: Optional[str] = None, compile: bool = False,
                 channels_last: bool = False, strict: bool = True,
                 full_probs: bool = False,
                 max_pixels: int = MAX_PIXELS) -> None:
        init_default_scope('mmseg')
        cfg = load_config(config, cfg_options)
        check_num_classes(cfg, config)
        self.cfg = cfg
        self.device = device
        self.tta = tta
        self.min_region_fraction = min_region_fraction
        self.full_probs = full_probs
        self.max_pixels = max_pixels
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
            checkpoints = [m.get('checkpoint') for m in
                           self.model.member_files]
        else:
            if not checkpoint:
                raise ConfigError(f'{config}: a checkpoint is required for '
                                  f'a single model')
            self.model, classes = load_frozen_model(cfg, checkpoint, device,
                                                    strict=strict)
            self.is_ensemble = False
            checkpoints = [checkpoint]
        #: the same string for the same config, weights and settings: what
        #: the reuse rule of tools/infer.py compares
        self.identity = model_identity(
            [cfg.pretty_text, f'tta={tta}',
             f'min_region={min_region_fraction}'],
            checkpoints)
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
        # steps that treat the three channels alike: the RGB photo can go
        # through them as it is (no full-size BGR copy) and the small model
        # input is flipped to BGR afterwards
        self._channel_blind = all(t['type'] in CHANNEL_BLIND_STEPS
                                  for t in steps)
        resize = [t for t in steps if t['type'] == 'Resize']
        self.max_aspect = MAX_ASPECT
        #: the keep-ratio Resize scale of the pipeline (None: unknown)
        self.resize_scale = None
        if resize and resize[0].get('keep_ratio') and isinstance(
                resize[0].get('scale'), (tuple, list)):
            self.resize_scale = tuple(resize[0]['scale'])
            self.max_aspect = max_aspect_for(self.resize_scale)
        #: fuses the upsampled terms of a photo (picklable: writer
        #: processes use it)
        self.combine = (self.model.combiner() if self.is_ensemble
                        else softmax_mean)

    # ------------------------------------------------------------------
    def _prepare_piece(self, rgb: np.ndarray, source: str):
        if self._channel_blind:
            data = self.pipeline(dict(img=rgb, img_path=None))
            data['inputs'] = data['inputs'].flip(0)  # RGB -> BGR
        else:
            data = self.pipeline(dict(img=rgb[..., ::-1].copy(),
                                      img_path=None))
        sample = data['data_samples']
        sample.set_metainfo(dict(img_path=source))
        return data['inputs'], sample

    _prepare = _prepare_piece

    def _log_probs(self, inputs, samples) -> np.ndarray:
        """(B, K, C, h, w) model-size log-probabilities of one batch."""
        autocast = torch.autocast(
            torch.device(self.device).type, dtype=self.autocast_dtype,
            enabled=self.autocast_dtype is not None)
        with autocast:
            if self.is_ensemble:
                out = self.model.member_log_probs(inputs, samples)
            else:
                out = predict_log_probs(self.model, inputs, samples,
                                        self.device, flip=self.tta)
        return out.float().cpu().numpy()

    def _piece_key(self, piece) -> tuple:
        return tuple(piece[1].img_shape)

    def _run(self, pieces) -> np.ndarray:
        return self._log_probs([p[0] for p in pieces],
                               [p[1] for p in pieces])

    def make_loader(self, dataset, batch_size: int, num_workers: int):
        """The batches of ``dataset`` for :func:`~.folder.segment_files`:
        PyTorch's DataLoader (``num_workers`` processes, prefetch, pinned
        memory on CUDA)."""
        return DataLoader(
            dataset, batch_size=batch_size, collate_fn=list,
            num_workers=num_workers,
            prefetch_factor=2 if num_workers else None,
            pin_memory=str(self.device).startswith('cuda'))
