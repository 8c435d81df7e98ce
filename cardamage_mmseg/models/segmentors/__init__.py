from .distill import DistillSegmentor, student_state_dict
from .ensemble import EnsembleSegmentor, build_member
from .fusion import FUSION_RULES, fuse

__all__ = [
    'DistillSegmentor', 'EnsembleSegmentor', 'FUSION_RULES', 'build_member',
    'fuse', 'student_state_dict'
]
