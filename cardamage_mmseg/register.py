"""Register everything the project adds to mmseg, and load checkpoints
safely.

Importing this module registers the datasets, transforms, losses,
backbones, heads, segmentors, hooks, loops, wrappers and metrics in mmseg's
registries and routes every checkpoint mmengine loads through the safe
loader (:mod:`cardamage_mmseg.utils.checkpoint`). Configs import it with
``custom_imports = dict(imports=['cardamage_mmseg.register'])``.
"""
from .utils.checkpoint import register_safe_checkpoint_loaders

register_safe_checkpoint_loaders()

from . import datasets  # noqa: E402,F401
from . import engine  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401
