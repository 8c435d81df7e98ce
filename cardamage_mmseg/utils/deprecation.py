"""Old import paths of names that moved, kept for one release."""
import importlib
import warnings
from typing import Any, Callable, Dict


def moved_names(module: str, moves: Dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` (PEP 562) serving names that moved.

    ``moves`` maps an old name to ``'new.module:new_name'``. Reading an old
    name imports its new module (only then: an alias never makes the old
    module import upward), warns with ``DeprecationWarning`` and returns
    the object itself, so old code keeps working unchanged.
    """

    def __getattr__(name: str) -> Any:
        if name not in moves:
            raise AttributeError(f'module {module!r} has no attribute '
                                 f'{name!r}')
        target_module, _, target = moves[name].partition(':')
        warnings.warn(
            f'{module}.{name} moved to {target_module}.{target}; the old '
            f'name will be removed in the next release', DeprecationWarning,
            stacklevel=2)
        return getattr(importlib.import_module(target_module), target)

    return __getattr__
