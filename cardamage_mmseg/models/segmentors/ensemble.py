"""EnsembleSegmentor: several trained segmentors as one mmseg model.

Why this is ours: mmseg 1.x has no model ensemble (0.x had only the
``tools/model_ensemble.py`` script, which averaged logits of members sharing
one pipeline). Here each member is built from its own config and checkpoint
and keeps its own data preprocessor (mean/std, BGR/RGB, size divisor) and
test mode (whole/slide); fusion happens on class probabilities resized to
the original image size, so members with different preprocessing mix. It
evaluates with ``tools/test.py`` like any model and refuses to train.

Memory: members' weights plus one batch of activations; nothing is kept
across batches.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ...core.fusion import TermFusion
from ...utils.config import (PACKAGE_PREFIX, ConfigNotFoundError,
                             locate_file, resolve_config_path)
from ...utils.deprecation import moved_names
from ..frozen import load_frozen_model
from .fusion import FUSION_RULES, fuse, normalise_weights
from .probs import (group_by_original_size, predict_log_probs,
                    predict_probs)


@MODELS.register_module()
class EnsembleSegmentor(BaseSegmentor):
    """Fuse the predictions of several trained segmentors.

    Args:
        members (list[dict]): ``dict(config=..., checkpoint=..., weight=1.0,
            device=None, cfg_options=None, strict=True)`` per member
            (``strict``: the checkpoint must fit the member's model).
        fusion (str): One of :data:`FUSION_RULES` (see :mod:`.fusion`).
        weights (list[float], optional): Overrides the members' weights.
        flip (bool): Also predict the horizontally flipped image and
            average (each member's test-time augmentation).
        background_index (int): For ``union``/``intersection``.
        config_dir (str, optional): The ensemble config's folder
            (:func:`~cardamage_mmseg.utils.config.load_config` sets it). A
            relative member config is looked for there first, then in the
            working directory; a relative checkpoint in the working
            directory first (mmseg's ``work_dirs/...`` convention), then
            there. A missing file's error lists every place tried.
        data_preprocessor (dict, optional): The ensemble's own, which only
            stacks images; each member normalises with its own.
    """

    def __init__(self,
                 members: Sequence[dict],
                 fusion: str = 'mean',
                 weights: Optional[Sequence[float]] = None,
                 flip: bool = False,
                 background_index: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 config_dir: Optional[str] = None,
                 init_cfg=None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SegDataPreProcessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not members:
            raise ValueError('EnsembleSegmentor needs at least one member')
        if fusion not in FUSION_RULES:
            raise ValueError(f'unknown fusion rule {fusion!r}; choose from '
                             f'{FUSION_RULES}')
        members = [self._locate(i, dict(m), config_dir)
                   for i, m in enumerate(members)]  # before any is built
        if weights is None:
            weights = [float(m.get('weight', 1.0)) for m in members]
        self.weights = normalise_weights(weights, len(members)).tolist()
        self.fusion = fusion
        self.flip = flip
        self.background_index = background_index
        default_device = 'cuda' if torch.cuda.is_available() else 'cpu'
        models, devices, classes = [], [], []
        for m in members:
            device = m.get('device') or default_device
            model, names = load_frozen_model(
                m['config'], m['checkpoint'], device, m.get('cfg_options'),
                strict=m.get('strict', True))
            models.append(model)
            devices.append(device)
            classes.append(names)
        known = [c for c in classes if c is not None]
        if any(c != known[0] for c in known):
            raise ValueError(
                'ensemble members predict different classes: ' + '; '.join(
                    f'{m["config"]}: {c}' for m, c in zip(members, classes)))
        num_classes = {self._num_classes(m) for m in models}
        if len(num_classes) != 1:
            raise ValueError(f'ensemble members have different class counts '
                             f'{sorted(num_classes)}')
        self.members = torch.nn.ModuleList(models)
        self.member_devices = devices
        self.member_configs = [m['config'] for m in members]
        #: each member's config and checkpoint, as found
        self.member_files = [dict(config=m['config'],
                                  checkpoint=m['checkpoint'])
                             for m in members]
        self.classes = known[0] if known else None
        self.num_classes = num_classes.pop()
        self.align_corners = False

    @staticmethod
    def _locate(index: int, member: dict, config_dir: Optional[str]) -> dict:
        """The member with its config and checkpoint paths found (see
        ``config_dir``)."""
        here = [config_dir] if config_dir else []
        config = member.get('config') or ''
        if config.startswith(PACKAGE_PREFIX):
            try:
                resolve_config_path(config)
            except ConfigNotFoundError as err:
                raise FileNotFoundError(f'ensemble member {index}: '
                                        f'{err}') from None
        else:
            member['config'] = locate_file(
                config, here + [os.getcwd()],
                f'ensemble member {index}: config file')
        member['checkpoint'] = locate_file(
            member.get('checkpoint') or '', [os.getcwd()] + here,
            f'ensemble member {index}: checkpoint file')
        return member

    @staticmethod
    def _num_classes(model) -> int:
        head = model.decode_head
        return getattr(head, 'num_classes', None) or head.out_channels

    # ------------------------------------------------------------------
    def member_probs(self, inputs: List[Tensor],
                     data_samples: List[SegDataSample]) -> Tensor:
        """Class probabilities of every member for one batch.

        ``inputs`` are the raw (un-normalised) images of the batch. Returns
        (B, M, C, H, W) at the original image size, which all images of
        the batch share (:meth:`predict` groups a mixed batch).
        """
        return torch.stack(self._per_member(predict_probs, inputs,
                                            data_samples), dim=1)

    def member_log_probs(self, inputs: List[Tensor],
                         data_samples: List[SegDataSample]) -> Tensor:
        """(B, M * T, C, h, w) log-probabilities of every member (T flip
        terms each) at the model size the images share
        (:func:`~.probs.predict_log_probs`): the terms
        :meth:`combine_terms` fuses after upsampling."""
        return torch.cat(self._per_member(predict_log_probs, inputs,
                                          data_samples), dim=1)

    def _per_member(self, predict, inputs: List[Tensor],
                    data_samples: List[SegDataSample]) -> List[Tensor]:
        """``predict(model, inputs, samples, device, flip)`` of every
        member on its device, moved to the fusion device."""
        outputs = []
        for model, device in zip(self.members, self.member_devices):
            if next(model.parameters()).device != torch.device(device):
                model.to(device)
            outputs.append(predict(model, inputs, data_samples, device,
                                   flip=self.flip).to(self._fusion_device))
        return outputs

    def combiner(self) -> 'TermFusion':
        """The fusion of upsampled terms, as a small picklable object."""
        return TermFusion(len(self.members), self.fusion,
                          tuple(self.weights), self.background_index)

    def combine_terms(self, terms: np.ndarray
                      ) -> Tuple[np.ndarray, np.ndarray]:
        """:class:`TermFusion` of this ensemble."""
        return self.combiner()(terms)

    @property
    def _fusion_device(self) -> torch.device:
        return torch.device(self.member_devices[0])

    def fuse_batch(self, probs: Tensor):
        """(B, M, C, H, W) -> list of (scores, labels) per image."""
        return [
            fuse(p, self.fusion, self.weights, self.background_index)
            for p in probs
        ]

    # -- BaseSegmentor API ------------------------------------------------
    def test_step(self, data: dict) -> List[SegDataSample]:
        """Runner entry point: stack raw images, let each member normalise.
        """
        inputs, samples = data['inputs'], data['data_samples']
        return self.predict(inputs, samples)

    def val_step(self, data: dict) -> List[SegDataSample]:
        return self.test_step(data)

    @staticmethod
    def _as_batch(inputs, data_samples):
        if isinstance(inputs, Tensor):
            inputs = list(inputs)
        if data_samples is None:
            data_samples = [
                SegDataSample(metainfo=dict(
                    ori_shape=x.shape[-2:], img_shape=x.shape[-2:]))
                for x in inputs
            ]
        return inputs, data_samples

    def _fused(self, inputs, data_samples) -> list:
        """(scores, labels) per image; images of different original sizes
        (a test batch > 1) go through the members in same-size groups."""
        fused = [None] * len(inputs)
        for idx in group_by_original_size(data_samples):
            probs = self.member_probs([inputs[i] for i in idx],
                                      [data_samples[i] for i in idx])
            for i, result in zip(idx, self.fuse_batch(probs)):
                fused[i] = result
        return fused

    def predict(self, inputs, data_samples=None) -> List[SegDataSample]:
        inputs, data_samples = self._as_batch(inputs, data_samples)
        fused = self._fused(inputs, data_samples)
        for sample, (scores, labels) in zip(data_samples, fused):
            sample.set_data(dict(
                seg_logits=PixelData(data=scores),
                pred_sem_seg=PixelData(data=labels[None])))
        return data_samples

    def _forward(self, inputs, data_samples=None) -> Tensor:
        """Fused class scores (B, C, H, W); one original size per batch."""
        inputs, data_samples = self._as_batch(inputs, data_samples)
        fused = self._fused(inputs, data_samples)
        return torch.stack([scores for scores, _ in fused])

    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        raise RuntimeError(
            'EnsembleSegmentor cannot be trained: train each member with '
            'tools/train.py and list their checkpoints in the ensemble.')

    def train_step(self, data, optim_wrapper):
        self.loss(None, None)

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError('an ensemble has no single feature map')

    def encode_decode(self, inputs: Tensor, batch_data_samples):
        raise NotImplementedError('use predict(): members decode separately')

    def init_weights(self) -> None:
        """Members come from their checkpoints: nothing to initialise."""


__getattr__ = moved_names(__name__, {
    'build_member': 'cardamage_mmseg.models.frozen:load_frozen_model'})
