from .ensemble import EnsembleSegmentor, build_member
from .fusion import FUSION_RULES, fuse

__all__ = ['EnsembleSegmentor', 'FUSION_RULES', 'build_member', 'fuse']
