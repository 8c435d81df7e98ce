"""The torch-free core: photos in, masks, overlays and reports out.

Nothing here imports torch, mmcv, mmengine or mmseg (only numpy, Pillow and
OpenCV), so the PyTorch path, an exported-model runtime and a service all
read photos, fit them to a model, report and write with the same code, and
a slim install can use it. ``make test`` checks that (import-linter's
contract in ``.importlinter`` and a test that imports it in a fresh
interpreter).
"""
from .files import IMAGE_SUFFIXES, atomic_write, is_image_file
from .image import (MAX_PIXELS, ImageLike, ImageReadError, load_rgb,
                    pil_to_rgb, read_image_rgb, read_reduced, scale_to_uint8,
                    to_rgb_array)
from .inputs import (InputError, check_output_folder, collect_inputs,
                     unique_names)
from .masks import holds_damage_ids, out_of_range_values, save_mask
from .outputs import (WriteTask, finished_report, output_paths, write_outputs,
                      write_photo, write_summary)
from .overlay import add_legend, colorize, overlay, side_by_side
from .palette import (AIHUB_CLASSES, AIHUB_PALETTE, BINARY_CLASSES,
                      BINARY_PALETTE, flat_palette, palette_for)
from .report import damage_report
from .result import DamageResult, finish
from .resize import pad_to, rescale_size, resize_for_model

__all__ = [
    'AIHUB_CLASSES', 'AIHUB_PALETTE', 'BINARY_CLASSES', 'BINARY_PALETTE',
    'DamageResult', 'MAX_PIXELS', 'WriteTask', 'finish', 'read_reduced',
    'write_photo',
    'IMAGE_SUFFIXES', 'ImageLike', 'ImageReadError', 'InputError',
    'add_legend',
    'atomic_write', 'check_output_folder',
    'collect_inputs', 'colorize', 'damage_report',
    'finished_report', 'flat_palette', 'holds_damage_ids', 'is_image_file',
    'load_rgb',
    'out_of_range_values', 'output_paths', 'overlay', 'pad_to',
    'palette_for', 'pil_to_rgb', 'read_image_rgb', 'rescale_size',
    'resize_for_model', 'save_mask', 'scale_to_uint8', 'side_by_side',
    'to_rgb_array', 'unique_names', 'write_outputs', 'write_summary'
]
