"""MobileViT at output stride 16 for DeepLabV3, on mmpretrain's MobileViT.

Why this is ours: mmpretrain's ``MobileViT`` always downsamples to stride 32
and appends a 1x1 expansion (160 -> 640 channels for ``small``). The
DeepLabV3-MobileViT of the study (Mehta & Rastegari, ICLR 2022; Apple's
``deeplabv3-mobilevit-small``) runs the last stage dilated (stride 1,
dilation 2 in its local 3x3 convolution) and drops the expansion. This
subclass makes exactly those two changes; the weights keep mmpretrain's
names, so its ImageNet checkpoints load unchanged (``prefix='backbone.'``).
"""
from typing import Sequence

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS


def _mobilevit_class():
    try:
        from mmpretrain.models import MobileViT
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            'DilatedMobileViT needs mmpretrain (pip install mmpretrain==1.2.0'
            ' or make install)') from err
    return MobileViT


def _first_conv_with_stride(module: nn.Module, stride: int) -> nn.Conv2d:
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (stride, stride):
            return m
    raise RuntimeError('no strided convolution found in the last stage')


@MODELS.register_module()
class DilatedMobileViT(BaseModule):
    """mmpretrain ``MobileViT`` with a dilated last stage.

    Args:
        arch (str): 'small', 'x_small' or 'xx_small'. Defaults to 'small'.
        output_stride (int): 16 (last stage dilated) or 32. Defaults to 16.
        expand_output (bool): Keep mmpretrain's final 1x1 expansion.
            Defaults to False (as DeepLabV3-MobileViT).
        out_indices (Sequence[int]): Stages to return (0-4). Defaults to
            (4, ).
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')``.
    """

    def __init__(self,
                 arch: str = 'small',
                 output_stride: int = 16,
                 expand_output: bool = False,
                 out_indices: Sequence[int] = (4, ),
                 init_cfg=None,
                 **kwargs) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f'output_stride must be 16 or 32, got '
                             f'{output_stride}')
        MobileViT = _mobilevit_class()
        net = MobileViT(arch=arch, out_indices=out_indices, **kwargs)
        if init_cfg is not None:
            net.init_cfg = init_cfg
        if output_stride == 16:
            last = net.layers[-1]
            # downsampling block: stride 2 -> 1 (dilation 1, as in the paper)
            conv = _first_conv_with_stride(last[0], 2)
            conv.stride = (1, 1)
            # the MobileViT block's local 3x3 conv sees dilation 2
            local = last[1].local_rep[0].conv
            local.dilation, local.padding = (2, 2), (2, 2)
        if not expand_output:
            net.conv_1x1_exp = nn.Identity()
        self.net = net
        self.out_indices = tuple(out_indices)

    def init_weights(self) -> None:
        self.net.init_weights()

    def forward(self, x):
        return self.net(x)
