"""int8 models for the CPU: ONNX Runtime's quantisation of an exported
model (torch-free).

- ``static``: the convolutions' weights and inputs in int8 (QDQ format,
  per-channel weights); activation ranges from calibration photos, fitted
  to the model input exactly as the runtime does it (:class:`~.onnx_
  segmenter.OnnxSegmenter`). Only convolutions (:data:`STATIC_OP_TYPES`):
  quantising every op also put the attention's softmax and matrix products
  in int8, and on SegFormer-b0 (2 CPU cores) ``QLinearSoftmax`` alone took
  a quarter of the run, so the whole file was slower than convolutions
  alone in int8 (docs/deploy.md).
- ``dynamic``: int8 weights of MatMul/Gemm, activation ranges found per
  batch at run time: no calibration photos, often the better choice for
  transformers on CPUs.

The accuracy cost is measured, never assumed: ``tools/export.py``
compares the result with PyTorch on photos, and ``benchmarks/export_speed
.py`` reports agreement with fp32 over the bundled photos.
"""
import os.path as osp
from typing import Callable, Iterator, Optional, Sequence

from .metadata import ModelFileError
from .onnx_segmenter import OnnxSegmenter

QUANT_MODES = ('static', 'dynamic')
#: the op types static quantisation puts in int8 (module docstring)
STATIC_OP_TYPES = ('Conv',)


class _PhotoReader:
    """onnxruntime's CalibrationDataReader protocol over photo files."""

    def __init__(self, segmenter: OnnxSegmenter, photos: Sequence[str],
                 progress: Optional[Callable[[str], None]]) -> None:
        self.items: Iterator = self._inputs(segmenter, photos, progress)

    @staticmethod
    def _inputs(segmenter, photos, progress):
        for k, path in enumerate(photos):
            prepared = segmenter.prepare_file(path, None)
            for piece in prepared.pieces:
                (x, *_), _ = piece
                yield {segmenter._input: x[None]}
            if progress:
                progress(f'calibration {k + 1}/{len(photos)}: '
                         f'{osp.basename(path)}')

    def get_next(self):
        return next(self.items, None)

    def rewind(self) -> None:  # newer onnxruntime calls it
        pass


def quantize_int8(src: str, dst: str, mode: str = 'static',
                  calibration: Sequence[str] = (),
                  progress: Optional[Callable[[str], None]] = None) -> None:
    """Write the int8 version of the exported model ``src`` to ``dst``
    (module docstring). ``calibration``: photo files (``static``).
    Metadata is copied by the caller (``onnx``'s model metadata is not
    kept by every quantiser)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_dynamic,
                                          quantize_static)
    if mode not in QUANT_MODES:
        raise ModelFileError(f'quantisation {mode!r}: choose from '
                             f'{QUANT_MODES}')
    if mode == 'dynamic':
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8,
                         op_types_to_quantize=['MatMul', 'Gemm'])
        return
    if not calibration:
        raise ModelFileError(f'{src}: static int8 needs calibration photos '
                             f'(--calib-dir)')
    reader = _PhotoReader(OnnxSegmenter(src), calibration, progress)
    quantize_static(
        src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
        op_types_to_quantize=list(STATIC_OP_TYPES),
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=dict(ActivationSymmetric=False,
                           CalibTensorRangeSymmetric=False,
                           CalibMovingAverage=False))
