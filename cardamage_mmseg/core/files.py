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
