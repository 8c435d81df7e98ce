from ...utils.deprecation import moved_names
from .distill import DistillSegmentor, student_state_dict
from .ensemble import EnsembleSegmentor
from .fusion import FUSION_RULES, fuse
from .hf_segmentor import HFSegmentor

__all__ = [
    'DistillSegmentor', 'EnsembleSegmentor', 'FUSION_RULES', 'fuse',
    'HFSegmentor', 'student_state_dict'
]

__getattr__ = moved_names(__name__, {
    'build_member': 'cardamage_mmseg.models.frozen:load_frozen_model'})
