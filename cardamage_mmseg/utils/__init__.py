"""Low-level helpers: safe checkpoint loading, config loading, version
work-arounds, distributed set-up. Importing this package imports nothing
heavy; each module brings its own dependencies."""
import importlib

_CHECKPOINT_NAMES = (
    'CheckpointError', 'CheckpointMismatchError', 'CorruptCheckpointError',
    'UnsafeCheckpointError',
    'allowed_globals', 'load_checkpoint_file',
    'register_safe_checkpoint_loaders')

__all__ = list(_CHECKPOINT_NAMES)


def __getattr__(name: str):
    """``from cardamage_mmseg.utils import load_checkpoint_file`` & co.
    import :mod:`.checkpoint` (and torch) only when asked."""
    if name in _CHECKPOINT_NAMES:
        return getattr(importlib.import_module(f'{__name__}.checkpoint'),
                       name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
