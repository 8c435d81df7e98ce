"""Work-arounds for third-party version clashes, applied on import.

Why this is ours: mmpretrain 1.2.0 (the last release) imports its
multimodal models (BLIP, ...) whenever ``transformers`` and ``pycocotools``
are installed, and those models subclass names that transformers 4.56
removed from ``transformers.modeling_utils``. mmpretrain catches the
ImportError, sets the base class to ``None`` and then dies with
``TypeError: NoneType takes no arguments``. mmdet imports mmpretrain and
mmseg imports mmdet, so in any environment with mmdet (which pulls
pycocotools) and a current transformers, ``import mmseg.models`` fails. No
model of this project uses those multimodal models, so we switch them off the
way mmpretrain itself does when their packages are missing (it registers
placeholders that explain what is needed if one is ever built).
"""
import importlib.util
import os.path as osp
import re
import sys
import warnings
from importlib import metadata
from typing import Optional, Tuple

#: the first transformers release whose ``modeling_utils`` lacks
#: ``apply_chunking_to_forward`` and ``find_pruneable_heads_and_indices``
#: (read in the wheels of 4.55.4 and 4.56.2)
TRANSFORMERS_BREAKING_MMPRETRAIN = (4, 56)
DEPENDENCY_MODULE = 'mmpretrain.utils.dependency'


def _major_minor(version: str) -> Tuple[int, int]:
    match = re.match(r'(\d+)\.(\d+)', version)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def installed_version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def mmpretrain_multimodal_breaks(
        transformers_version: Optional[str]) -> bool:
    """Whether this transformers version breaks mmpretrain's multimodal
    import (the caller checks that mmpretrain would import it at all)."""
    return (transformers_version is not None and
            _major_minor(transformers_version) >=
            TRANSFORMERS_BREAKING_MMPRETRAIN)


def disable_broken_mmpretrain_multimodal() -> bool:
    """Before mmpretrain is first imported: if it would import its
    multimodal models and the installed transformers breaks them, load
    ``mmpretrain.utils.dependency`` ahead of the package with
    ``WITH_MULTIMODAL = False``, so the package's own ``import`` of that
    module finds this copy. Returns whether it did so."""
    if 'mmpretrain' in sys.modules or DEPENDENCY_MODULE in sys.modules:
        return False  # already imported (it worked, or it is too late)
    transformers = installed_version('transformers')
    if not mmpretrain_multimodal_breaks(transformers):
        return False
    spec = importlib.util.find_spec('mmpretrain')
    if spec is None or spec.origin is None:
        return False
    path = osp.join(osp.dirname(spec.origin), 'utils', 'dependency.py')
    if not osp.isfile(path):
        return False
    dep_spec = importlib.util.spec_from_file_location(DEPENDENCY_MODULE, path)
    module = importlib.util.module_from_spec(dep_spec)
    dep_spec.loader.exec_module(module)
    if not getattr(module, 'WITH_MULTIMODAL', False):
        return False  # mmpretrain will skip them anyway (no pycocotools)
    module.WITH_MULTIMODAL = False
    sys.modules[DEPENDENCY_MODULE] = module
    warnings.warn(
        f'transformers {transformers} breaks mmpretrain '
        f'{installed_version("mmpretrain")}\'s multimodal models (BLIP, '
        f'...), which cardamage_mmseg does not use: they are switched off '
        f'so that mmseg/mmdet/mmpretrain import. Install transformers<4.56 '
        f'if you need them.', stacklevel=2)
    return True
