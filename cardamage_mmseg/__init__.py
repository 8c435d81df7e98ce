"""cardamage-mmseg: car-damage segmentation on MMSegmentation 1.x.

Importing the package registers its datasets, transforms, losses and
segmentors in mmseg's registries and routes every checkpoint load through
the safe loader (see :mod:`cardamage_mmseg.utils.checkpoint`). Configs do
this with ``custom_imports = dict(imports=['cardamage_mmseg'])``. Import it
before ``mmseg.models``/``mmseg.apis``: it first works around a version clash
that otherwise breaks their import (see :mod:`cardamage_mmseg.utils.compat`).
"""
from .utils.compat import disable_broken_mmpretrain_multimodal

disable_broken_mmpretrain_multimodal()

from .utils.checkpoint import register_safe_checkpoint_loaders  # noqa: E402
from .version import __version__  # noqa: E402

register_safe_checkpoint_loaders()

from . import datasets  # noqa: E402,F401  (registers into mmseg)
from . import engine  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401

__all__ = ['__version__']
