"""Moved to :mod:`cardamage_mmseg.core.overlay` (this alias goes in the
next release)."""
from ..utils.deprecation import moved_names

__getattr__ = moved_names(__name__, {
    name: f'cardamage_mmseg.core.overlay:{name}'
    for name in ('add_legend', 'colorize', 'overlay', 'side_by_side')
})
