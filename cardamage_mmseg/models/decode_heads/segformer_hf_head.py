"""SegFormer's all-MLP decode head exactly as HuggingFace transformers
computes it (``SegformerDecodeHead``).

Why this is ours: mmseg's :class:`~mmseg.models.decode_heads.SegformerHead`
is a different module (a ConvModule with BN+ReLU per stage, then a fusion
ConvModule), so HF SegFormer checkpoints (the study's models, NVIDIA's
ADE/Cityscapes fine-tunes) have no place to go in mmseg. This head has HF's
layers under HF's names (``linear_c.i.proj``, ``linear_fuse``,
``batch_norm``; the classifier is mmseg's ``conv_seg``), so
:mod:`..converters.segformer_hf` maps weights one to one, both ways.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn


class StageProjection(nn.Module):
    """A per-pixel ``nn.Linear`` from a stage's channels to the head's
    (HF's ``SegformerMLP``: same parameter names)."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        x = self.proj(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(batch, -1, height, width)


@MODELS.register_module()
class SegformerHFHead(BaseDecodeHead):
    """HF's SegFormer decode head.

    For stage features ``x_0 .. x_{N-1}`` (``x_0`` the largest)::

        u_i    = bilinear(linear_i(x_i), size(x_0))    # align_corners=False
        logits = conv_seg(dropout(relu(bn(fuse([u_{N-1}, ..., u_0])))))

    ``linear_i`` is a per-pixel linear map ``C_i -> channels``, ``fuse`` a
    1x1 convolution without bias from ``N * channels`` to ``channels``; the
    stages are concatenated in reverse order, as HF does. Dropout is
    element-wise (``nn.Dropout``, HF's), not mmseg's ``Dropout2d``. The
    norm follows ``norm_cfg`` (BN when None; SyncBN keeps BN's parameter
    names).
    """

    def __init__(self, norm_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(
            input_transform='multiple_select', norm_cfg=norm_cfg, **kwargs)
        self.linear_c = nn.ModuleList(
            StageProjection(c, self.channels) for c in self.in_channels)
        self.linear_fuse = nn.Conv2d(
            self.channels * len(self.in_channels), self.channels, 1,
            bias=False)
        self.batch_norm = build_norm_layer(norm_cfg or dict(type='BN'),
                                           self.channels)[1]
        self.activation = nn.ReLU()
        self.dropout = (nn.Dropout(self.dropout_ratio)
                        if self.dropout_ratio > 0 else None)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        inputs = self._transform_inputs(inputs)
        size = inputs[0].shape[2:]
        ups = [
            F.interpolate(proj(x), size=size, mode='bilinear',
                          align_corners=False)
            for x, proj in zip(inputs, self.linear_c)
        ]
        x = self.linear_fuse(torch.cat(ups[::-1], dim=1))
        return self.cls_seg(self.activation(self.batch_norm(x)))
