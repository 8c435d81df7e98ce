"""SegFormer's all-MLP decode head exactly as HuggingFace transformers
computes it (``SegformerDecodeHead``).

Why this is ours: mmseg's :class:`~mmseg.models.decode_heads.SegformerHead`
is a different module (a ConvModule with BN+ReLU per stage, then a fusion
ConvModule), so HF SegFormer checkpoints (the study's models, NVIDIA's
ADE/Cityscapes fine-tunes) have no place to go in mmseg. This head has HF's
layers under HF's names (``linear_c.i.proj``, ``linear_fuse``,
``batch_norm``; the classifier is mmseg's ``conv_seg``), so
:mod:`..converters.segformer_hf` maps weights one to one, both ways. In
eval mode it computes the same function per stage
(:meth:`SegformerHFHead.forward_per_stage`): SegFormer-b3 2.6x and b0
1.2x faster in PyTorch on a 2-core CPU (docs/hf.md).
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from .stage_fold import fold_norm, sum_stages


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
        """HF's computation in training mode (:meth:`forward_concat`), the
        same function per stage in eval mode (:meth:`forward_per_stage`:
        float rounding apart, tested within 1e-5)."""
        if self.training:
            return self.forward_concat(inputs)
        return self.forward_per_stage(inputs)

    def forward_concat(self, inputs: List[Tensor]) -> Tensor:
        """The class docstring's formula as HF computes it."""
        inputs = self._transform_inputs(inputs)
        size = inputs[0].shape[2:]
        ups = [
            F.interpolate(proj(x), size=size, mode='bilinear',
                          align_corners=False)
            for x, proj in zip(inputs, self.linear_c)
        ]
        x = self.linear_fuse(torch.cat(ups[::-1], dim=1))
        return self.cls_seg(self.activation(self.batch_norm(x)))

    def forward_per_stage(self, inputs: List[Tensor]) -> Tensor:
        """The same function with each stage's linear map ``L_i x + b_i``
        and its slice ``W_i`` of the fusion folded into one map, run at the
        stage's own resolution (no activation lies between them, and a 1x1
        map commutes with the resize: :mod:`.stage_fold`)::

            fuse([u_i]) = sum_i up((W_i L_i) x_i) + sum_i W_i b_i

        and an eval-mode BN folded in too. The full-size concatenation and
        the (N * channels) -> channels convolution never run: on a
        512 x 512 input that is 26 of b3's 39 G multiply-adds of the head.
        """
        inputs = self._transform_inputs(inputs)
        slices = self.linear_fuse.weight.flatten(1).split(self.channels,
                                                          dim=1)
        maps, biases = [], []
        for stage, weight in zip(self.linear_c, slices[::-1]):
            maps.append(weight @ stage.proj.weight)
            biases.append(weight @ stage.proj.bias)
        # a resize keeps constants: all biases join the first stage's
        maps, bias, norm = fold_norm(maps, sum(biases), self.batch_norm)
        parts = [F.conv2d(x, m[:, :, None, None])
                 for x, m in zip(inputs[1:], maps[1:])]
        first = F.conv2d(inputs[0], maps[0][:, :, None, None], bias)
        out = sum_stages(parts, first, inputs[0].shape[2:], 'bilinear',
                         False)
        if norm is not None:
            out = norm(out)
        return self.cls_seg(self.activation(out))
