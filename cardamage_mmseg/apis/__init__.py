"""Python APIs: :class:`DamageSegmenter` (photos in, masks and reports
out) and :func:`segment_files` (folders at the pace of the model).

``DamageSegmenter`` is the PyTorch backend (:mod:`.inference`: torch, mmcv,
mmseg), imported when first asked for; given an ``.onnx`` file it returns
the torch-free :class:`~..runtime.OnnxSegmenter`. In a slim install
(the runtime of exported models only, no torch) ``DamageSegmenter`` still
takes ``.onnx`` files and says what a config needs.
"""
import importlib

from ..core.image import ImageReadError, read_image_rgb
from ..core.report import damage_report
from ..core.result import DamageResult
from ..core.segmenter import Prepared
from ..runtime import ModelFileError, OnnxSegmenter, is_onnx_file
from .folder import FolderRun, ThreadedLoader, segment_files

#: top-level packages of the training install: without them, only the
#: exported models' runtime is here
TRAINING_STACK = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmseg',
                  'mmdet', 'mmpretrain', 'timm')

__all__ = ['DamageResult', 'DamageSegmenter', 'FolderRun', 'ImageReadError',
           'OnnxSegmenter', 'Prepared', 'ThreadedLoader', 'damage_report',
           'read_image_rgb', 'segment_files']


def _runtime_only(missing: ModuleNotFoundError):
    """``DamageSegmenter`` of a slim install: ``.onnx`` files only."""

    class DamageSegmenter:
        """Exported models only (this install has no torch: see
        :mod:`cardamage_mmseg.apis`)."""

        def __new__(cls, config: str = '', *args, **kwargs):
            if is_onnx_file(config):
                return OnnxSegmenter(config, *args, **kwargs)
            raise ModelFileError(
                f'{config}: a config (a PyTorch model) needs the training '
                f'install (bash tools/install.sh: torch, mmcv, mmseg); this '
                f'one runs exported .onnx models only ({missing})')

    return DamageSegmenter


def __getattr__(name: str):
    """``DamageSegmenter``: imports the PyTorch backend when asked for
    (see the module docstring)."""
    if name != 'DamageSegmenter':
        raise AttributeError(f'module {__name__!r} has no attribute '
                             f'{name!r}')
    try:
        value = importlib.import_module(f'{__name__}.inference'
                                        ).DamageSegmenter
    except ModuleNotFoundError as err:
        if (err.name or '').split('.')[0] not in TRAINING_STACK:
            raise
        value = _runtime_only(err)
    globals()[name] = value
    return value
