"""Python APIs."""
from .inference import (DamageResult, DamageSegmenter, ImageReadError,
                        damage_report, read_image_rgb)

__all__ = ['DamageResult', 'DamageSegmenter', 'ImageReadError',
           'damage_report', 'read_image_rgb']
