"""Python APIs."""
from .folder import FolderRun, segment_files
from .inference import (DamageResult, DamageSegmenter, ImageReadError,
                        damage_report, read_image_rgb)

__all__ = ['DamageResult', 'DamageSegmenter', 'FolderRun', 'ImageReadError',
           'damage_report', 'read_image_rgb', 'segment_files']
