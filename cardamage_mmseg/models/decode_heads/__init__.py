from .light_aspp_head import LightASPPHead

__all__ = ['LightASPPHead']
