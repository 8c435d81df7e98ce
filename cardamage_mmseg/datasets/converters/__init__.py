"""Annotation converters to mmseg's ``img_dir``/``ann_dir`` layout."""
from .aihub import AIHUB_CLASS_IDS, load_aihub_entries, parse_label
from .common import (ConversionError, Entry, Polygon, Summary, WriteError,
                     convert_entry, printable, rasterize, run_conversion)
from .splits import (assign_splits, kept_split_note, split_stems,
                     splits_on_disk)
from .via import load_via_entries, parse_class_map

__all__ = [
    'AIHUB_CLASS_IDS', 'ConversionError', 'Entry', 'Polygon', 'Summary',
    'assign_splits', 'convert_entry', 'kept_split_note', 'load_aihub_entries',
    'load_via_entries', 'parse_class_map', 'parse_label', 'printable',
    'rasterize', 'run_conversion', 'split_stems', 'splits_on_disk',
    'WriteError'
]
