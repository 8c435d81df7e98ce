"""Weight layouts of other libraries mapped onto this project's modules
(pure state-dict and config maps; no file or network access)."""
from .segformer_hf import (ConversionError, hf_config_from_mmseg,
                           hf_to_mmseg_state, mit_from_hf_config,
                           mmseg_to_hf_state, segformer_from_hf_config)

__all__ = [
    'ConversionError', 'hf_config_from_mmseg', 'hf_to_mmseg_state',
    'mit_from_hf_config', 'mmseg_to_hf_state', 'segformer_from_hf_config'
]
