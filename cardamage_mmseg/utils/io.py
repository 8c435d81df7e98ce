"""Moved to :mod:`cardamage_mmseg.core.files` (this alias goes in the next
release)."""
from .deprecation import moved_names

__getattr__ = moved_names(__name__, {
    'atomic_write': 'cardamage_mmseg.core.files:atomic_write'})
