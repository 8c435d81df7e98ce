from . import backbones  # noqa: F401
from . import decode_heads  # noqa: F401
from . import hf_pretrained  # noqa: F401
from . import losses  # noqa: F401
from . import segmentors  # noqa: F401
from .frozen import load_frozen_model

__all__ = ['load_frozen_model']
