from .dilated_mobilevit import DilatedMobileViT
from .hf_model import HFSemanticSegModel
from .mit_sdpa import MixVisionTransformerSDPA

__all__ = ['DilatedMobileViT', 'HFSemanticSegModel', 'MixVisionTransformerSDPA']
