"""mmseg's EncoderDecoder around a whole HuggingFace segmentation model.

Why this is ours: it lets a HF architecture that OpenMMLab lacks (the
study's DPT-hybrid) train with mmengine's runner and this project's losses,
test, ensemble, infer and teach like any mmseg model: the HF model
(:class:`~..backbones.HFSemanticSegModel`) is the "backbone", its logits go
through :class:`~..decode_heads.LogitsHead` (mmseg's loss, sampler and
resizing). One place sets the label count of both.
"""
from typing import Optional

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS


@MODELS.register_module()
class HFSegmentor(EncoderDecoder):
    """Args:
        hf_model: arguments of :class:`HFSemanticSegModel` (``config``,
            ``init_cfg``); its ``num_labels`` is set to the head's
            ``num_classes``.
        decode_head: a :class:`LogitsHead` config (losses, ``num_classes``,
            ``align_corners``); the rest as :class:`EncoderDecoder`.
    """

    def __init__(self, hf_model: dict, decode_head: dict,
                 neck: Optional[dict] = None, **kwargs) -> None:
        if neck is not None:
            raise ValueError('HFSegmentor: the HF model is the whole '
                             'network; it takes no neck')
        if decode_head.get('type', 'LogitsHead') != 'LogitsHead':
            raise ValueError(f'HFSegmentor: decode_head must be a '
                             f'LogitsHead (the HF model has its own '
                             f'classifier), not {decode_head["type"]!r}')
        decode_head = dict(decode_head, type='LogitsHead')
        backbone = dict(hf_model, type='HFSemanticSegModel',
                        num_labels=decode_head['num_classes'])
        super().__init__(backbone=backbone, decode_head=decode_head,
                         **kwargs)
