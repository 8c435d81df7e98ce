"""DeepLabV3's ASPP head with a 1x1 projection.

Why this is ours: mmseg's ``ASPPHead`` fuses the five branches with a 3x3
convolution ((5 x C) -> C, 2.9M parameters at C=256), which more than
doubles the head of a small DeepLabV3. The DeepLabV3 paper, torchvision and
the study's DeepLabV3-MobileViT use a 1x1 projection; this subclass changes
only that layer.
"""
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import ASPPHead
from mmseg.registry import MODELS


@MODELS.register_module()
class LightASPPHead(ASPPHead):
    """ASPP (image pooling + 1x1 + atrous 3x3 branches) -> 1x1 projection.

    Same arguments as :class:`mmseg.models.decode_heads.ASPPHead`.
    """

    def __init__(self, dilations=(1, 6, 12, 18), **kwargs) -> None:
        super().__init__(dilations=dilations, **kwargs)
        self.bottleneck = ConvModule(
            (len(dilations) + 1) * self.channels,
            self.channels,
            1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
