from .dilated_mobilevit import DilatedMobileViT

__all__ = ['DilatedMobileViT']
