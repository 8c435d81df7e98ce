"""Files: which names are photos, and atomic writes (a killed process never
leaves a truncated file under the final name)."""
import os
import os.path as osp
import tempfile
from typing import Callable

#: Photo suffixes every tool and converter accepts (compared lower-case).
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends with one of :data:`IMAGE_SUFFIXES`, in any
    case (``CAR.JPG`` counts)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def _umask() -> int:
    """The process umask (read once: reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write(path: str, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``path``'s folder,
    then rename it to ``path`` (atomic on POSIX). The temporary file is
    removed if ``write`` fails. The file gets the mode a plain ``open``
    would give (``0o666`` less the umask), not ``mkstemp``'s private
    ``0o600``: a data set converted by one user is readable by another
    user or a container."""
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=folder,
                               suffix=osp.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
