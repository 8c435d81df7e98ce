from .light_aspp_head import LightASPPHead
from .logits_head import LogitsHead
from .segformer_hf_head import SegformerHFHead

__all__ = ['LightASPPHead', 'LogitsHead', 'SegformerHFHead']
