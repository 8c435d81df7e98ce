"""How a tool ends: a user's mistake is a message and exit code 2, a bug a
traceback."""
import sys
from typing import Callable, Optional, Sequence

from ..core.image import ImageReadError
from ..core.inputs import InputError
from ..datasets.car_damage import DatasetError
from ..utils.checkpoint import CheckpointError
from ..utils.config import ConfigError


class UsageError(ValueError):
    """A command line the tool cannot run (checked after parsing)."""


#: errors whose message tells the user what to fix: no traceback
USER_ERRORS = (UsageError, ConfigError, InputError, ImageReadError,
               DatasetError, CheckpointError, FileNotFoundError)
USER_ERROR_EXIT_CODE = 2


def run(main: Callable[[Optional[Sequence[str]]], Optional[int]],
        argv: Optional[Sequence[str]] = None) -> int:
    """Call ``main(argv)``; return its exit code (None -> 0), or print
    ``error: <message>`` to stderr and return 2 for a :data:`USER_ERRORS`
    error. Anything else propagates with its traceback."""
    try:
        code = main(argv)
    except USER_ERRORS as err:
        print(f'error: {err}', file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    return int(code or 0)
