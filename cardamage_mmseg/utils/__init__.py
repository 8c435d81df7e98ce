from .checkpoint import (CheckpointError, CorruptCheckpointError,
                         UnsafeCheckpointError, allowed_globals,
                         load_checkpoint_file,
                         register_safe_checkpoint_loaders)

__all__ = [
    'CheckpointError', 'CorruptCheckpointError', 'UnsafeCheckpointError',
    'allowed_globals', 'load_checkpoint_file',
    'register_safe_checkpoint_loaders'
]
