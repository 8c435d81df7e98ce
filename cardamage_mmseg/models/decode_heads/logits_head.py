"""A decode head for models that compute their own logits.

Why this is ours: mmseg's :class:`BaseDecodeHead` always ends in its own
classifier (``conv_seg``); a whole HuggingFace segmentation model in the
backbone slot (:class:`~..backbones.HFSemanticSegModel`) already ends in
one. This head passes those logits on, so mmseg's losses (and this
project's), sampler, ``predict`` and resizing apply to them unchanged.
"""
from typing import List

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LogitsHead(BaseDecodeHead):
    """``forward(inputs) = inputs[in_index]``: (B, num_classes, h, w)
    logits at the model's resolution; no parameters."""

    def __init__(self, num_classes: int, **kwargs) -> None:
        kwargs.update(in_channels=num_classes, channels=num_classes,
                      dropout_ratio=0, init_cfg=None)
        super().__init__(num_classes=num_classes, **kwargs)
        del self.conv_seg

    def forward(self, inputs: List[Tensor]) -> Tensor:
        logits = self._transform_inputs(inputs)
        if logits.shape[1] != self.out_channels:
            raise ValueError(f'the model gives {logits.shape[1]} channels, '
                             f'the head expects {self.out_channels}')
        return logits
