"""Atomic file writes: a killed process never leaves a truncated file."""
import os
import os.path as osp
import tempfile
from typing import Callable


def atomic_write(path: str, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``path``'s folder,
    then rename it to ``path`` (atomic on POSIX). The temporary file is
    removed if ``write`` fails."""
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=folder,
                               suffix=osp.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
