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
import importlib.abc
import importlib.util
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


class _MultimodalOffLoader(importlib.abc.Loader):
    """Runs ``mmpretrain.utils.dependency`` with its real loader, then
    sets ``WITH_MULTIMODAL = False`` (before the package reads it)."""

    def __init__(self, loader, transformers: str) -> None:
        self.loader = loader
        self.transformers = transformers

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        if not getattr(module, 'WITH_MULTIMODAL', False):
            return  # mmpretrain will skip them anyway (no pycocotools)
        module.WITH_MULTIMODAL = False
        warnings.warn(
            f'transformers {self.transformers} breaks mmpretrain '
            f'{installed_version("mmpretrain")}\'s multimodal models (BLIP, '
            f'...), which cardamage_mmseg does not use: they are switched '
            f'off so that mmseg/mmdet/mmpretrain import. Install '
            f'transformers<4.56 if you need them.', stacklevel=2)


class _MultimodalOffFinder(importlib.abc.MetaPathFinder):
    """A one-shot import hook for ``mmpretrain.utils.dependency``."""

    def __init__(self, transformers: str) -> None:
        self.transformers = transformers

    def find_spec(self, name, path=None, target=None):
        if name != DEPENDENCY_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _MultimodalOffLoader(spec.loader,
                                               self.transformers)
        return spec


def disable_broken_mmpretrain_multimodal() -> bool:
    """Before mmpretrain is first imported: if the installed transformers
    breaks its multimodal models, hook the import of
    ``mmpretrain.utils.dependency`` so that it ends with
    ``WITH_MULTIMODAL = False`` (what the module itself sets when their
    packages are missing). Nothing is imported now: ``import
    cardamage_mmseg`` stays light. Returns whether the hook is in place."""
    if 'mmpretrain' in sys.modules or DEPENDENCY_MODULE in sys.modules:
        return False  # already imported (it worked, or it is too late)
    if any(isinstance(f, _MultimodalOffFinder) for f in sys.meta_path):
        return True
    transformers = installed_version('transformers')
    if not mmpretrain_multimodal_breaks(transformers):
        return False
    if importlib.util.find_spec('mmpretrain') is None:
        return False
    sys.meta_path.insert(0, _MultimodalOffFinder(transformers))
    return True
