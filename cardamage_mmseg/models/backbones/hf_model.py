"""A HuggingFace transformers semantic-segmentation model run as an mmseg
module.

Why this is ours: OpenMMLab has no DPT-hybrid (ResNet + ViT embedding), the
study's second-best model, and HF ships architectures mmseg lacks. This
module holds a whole ``AutoModelForSemanticSegmentation`` (built from its HF
config: random weights; pretrained weights come from ``init_cfg=dict(
type='HFPretrained', checkpoint=...)``, see :mod:`..hf_pretrained`) in
the backbone slot of an ``EncoderDecoder``; its logits go to
:class:`~..decode_heads.LogitsHead`. transformers is imported only when one
is built (the ``hf`` extra).
"""
import os.path as osp
from typing import List, Mapping, Optional, Union

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.hf_files import read_hf_json


def import_transformers():
    """The transformers module, or an ImportError that says how to get it.
    """
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            'HuggingFace models need transformers: pip install -e ".[hf]" '
            '(requirements/hf.txt pins the tested version)') from error
    return transformers


def hf_config_dict(config: Union[str, Mapping]) -> dict:
    """A HF config as a dict: given as one, or read from a ``config.json``
    or a ``save_pretrained`` directory (local files only)."""
    if isinstance(config, Mapping):
        return dict(config)
    if osp.isdir(config):
        return read_hf_json(config)
    if not osp.isfile(config):
        raise FileNotFoundError(f'HF config not found: {config}')
    return read_hf_json(osp.dirname(config) or '.', osp.basename(config))


@MODELS.register_module()
class HFSemanticSegModel(BaseModule):
    """``forward(x) = [model(pixel_values=x).logits]``.

    Args:
        config: HF config fields with ``model_type`` (e.g. ``'dpt'``), or a
            path to a ``config.json`` / ``save_pretrained`` directory.
        num_labels: overrides the config's label count (the head's classes).
        init_cfg: ``dict(type='HFPretrained', checkpoint=DIR_OR_HUB_ID)``.
    """

    def __init__(self,
                 config: Union[str, Mapping],
                 num_labels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        transformers = import_transformers()
        fields = hf_config_dict(config)
        model_type = fields.pop('model_type', None)
        if not model_type:
            raise ValueError('HF config without model_type: say which '
                             'architecture (e.g. model_type="dpt")')
        if num_labels is not None:
            fields.pop('id2label', None)
            fields.pop('label2id', None)
            fields['num_labels'] = int(num_labels)
        hf_config = transformers.AutoConfig.for_model(model_type, **fields)
        self.model = transformers.AutoModelForSemanticSegmentation.from_config(
            hf_config)
        self.num_labels = hf_config.num_labels

    def init_weights(self) -> None:
        """Only this module's ``init_cfg``: HF's own ``init_weights`` would
        re-initialise what a pretrained checkpoint loaded."""
        if not self._is_init and self.init_cfg:
            initialize(self, self.init_cfg)
        self._is_init = True

    def _accept_input_size(self, x: Tensor) -> None:
        """DPT-hybrid's embedding resizes its position embeddings to any
        patch grid but refuses inputs other than ``config.image_size``
        (its ``interpolate_pos_encoding`` switch is not reachable from the
        model's forward); tell it the batch's size."""
        embeddings = getattr(getattr(self.model, 'dpt', None), 'embeddings',
                             None)
        if hasattr(embeddings, '_resize_pos_embed') and hasattr(
                embeddings, 'image_size'):
            embeddings.image_size = tuple(x.shape[-2:])

    def forward(self, x: Tensor) -> List[Tensor]:
        """Logits at the HF model's resolution. HF's
        ``DPTForSemanticSegmentation`` assumes a square patch grid (its
        neck is called without the grid's shape), so a DPT input of
        ``h != w`` is zero-padded (bottom/right, the normalised mean, as
        mmseg pads) to a square ``s`` and the logits ``L x L`` cropped back
        to ``round(L h / s) x round(L w / s)``."""
        height, width = x.shape[-2:]
        side = max(height, width)
        square = self.model.config.model_type == 'dpt' and height != width
        if square:
            x = F.pad(x, (0, side - width, 0, side - height))
        self._accept_input_size(x)
        logits = self.model(pixel_values=x).logits
        if square:
            size = logits.shape[-1]
            logits = logits[..., :round(size * height / side),
                            :round(size * width / side)]
        return [logits]
