"""cardamage-mmseg: car-damage segmentation on MMSegmentation 1.x.

Importing the package registers its datasets, transforms, losses and
segmentors in mmseg's registries and routes every checkpoint load through
the safe loader (see :mod:`cardamage_mmseg.utils.checkpoint`). Configs do
this with ``custom_imports = dict(imports=['cardamage_mmseg'])``.
"""
from .utils.checkpoint import register_safe_checkpoint_loaders
from .version import __version__

register_safe_checkpoint_loaders()

from . import datasets  # noqa: E402,F401  (registers into mmseg)
from . import engine  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401

__all__ = ['__version__']
