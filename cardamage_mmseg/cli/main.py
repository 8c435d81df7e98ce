"""How a tool ends: a user's mistake is a message and exit code 2, a bug a
traceback. Torch-free: the exported models' runtime ends the same way."""
import importlib
import sys
from typing import Callable, Optional, Sequence, Tuple

from ..core.image import ImageReadError
from ..core.inputs import InputError
from ..runtime.metadata import ModelFileError


class UsageError(ValueError):
    """A command line the tool cannot run (checked after parsing)."""


#: errors whose message tells the user what to fix: no traceback. Those of
#: modules that need torch or the OpenMMLab stack are named (module,
#: class): a class whose module was never imported cannot have been raised,
#: so they are looked up among the imported modules only.
USER_ERROR_NAMES = (
    ('cardamage_mmseg.utils.config', 'ConfigError'),
    ('cardamage_mmseg.datasets.car_damage', 'DatasetError'),
    ('cardamage_mmseg.utils.checkpoint', 'CheckpointError'),
    ('cardamage_mmseg.utils.hf_files', 'HFFilesError'),
    ('cardamage_mmseg.models.converters.segformer_hf', 'ConversionError'),
)
USER_ERROR_EXIT_CODE = 2


def user_errors() -> Tuple[type, ...]:
    """The error classes :func:`run` reports as a message."""
    found = [UsageError, InputError, ImageReadError, ModelFileError,
             FileNotFoundError, FileExistsError]
    for module, name in USER_ERROR_NAMES:
        if module in sys.modules:
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def run(main: Callable[[Optional[Sequence[str]]], Optional[int]],
        argv: Optional[Sequence[str]] = None) -> int:
    """Call ``main(argv)``; return its exit code (None -> 0), or print
    ``error: <message>`` to stderr and return 2 for a :func:`user_errors`
    error. Anything else propagates with its traceback."""
    try:
        code = main(argv)
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        print(f'error: {err}', file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    return int(code or 0)
