from .dilated_mobilevit import DilatedMobileViT
from .mit_sdpa import MixVisionTransformerSDPA

__all__ = ['DilatedMobileViT', 'MixVisionTransformerSDPA']
