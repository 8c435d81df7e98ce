"""The torch-free runtime of exported models: ONNX Runtime plus the core.

Nothing here imports torch, mmcv, mmengine or mmseg (``make test`` checks
it), so a slim install (``pip install cardamage-mmseg[runtime]``: numpy,
Pillow, OpenCV, onnxruntime) segments photos with a model exported by
``tools/export.py``.
"""
from .metadata import (METADATA_KEY, SCHEMA, SCHEMA_VERSION, ModelFileError,
                       dump_metadata, parse_metadata)
from .onnx_segmenter import OnnxSegmenter, is_onnx_file, providers_for

__all__ = ['METADATA_KEY', 'SCHEMA', 'SCHEMA_VERSION', 'ModelFileError',
           'OnnxSegmenter', 'dump_metadata', 'is_onnx_file',
           'parse_metadata', 'providers_for']
