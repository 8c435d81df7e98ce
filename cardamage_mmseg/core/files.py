"""Files: which names are photos, and atomic writes (a killed process, a
full disk or a short write never leaves a truncated file under the final
name)."""
import errno
import hashlib
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

#: prefix of the temporary files of :func:`atomic_write` (a converter's
#: re-run removes leftovers with this prefix and :data:`TMP_SUFFIX`)
TMP_PREFIX = '.tmp-'
#: suffix of those temporary files (after the final name's extension)
TMP_SUFFIX = '.part'


#: write errors that end a run: every later file would fail too
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file :func:`atomic_write` left."""
    return name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)


def atomic_write(path: str, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``path``'s folder,
    then rename it to ``path`` (atomic on POSIX). The temporary file is
    removed if ``write`` fails. The file gets the mode a plain ``open``
    would give (``0o666`` less the umask), not ``mkstemp``'s private
    ``0o600``: a data set converted by one user is readable by another
    user or a container."""
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder,
                               suffix=osp.splitext(path)[1] + TMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _write_all(fd: int, data: bytes, path: str) -> None:
    """``os.write`` until every byte is out; a write that makes no progress
    is a full disk (``ENOSPC``)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        view = view[n:]


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`). Every
    byte is written and the file's size checked before the rename, so a
    full disk or a short write raises ``OSError`` naming ``path`` and
    leaves neither a truncated file nor a temporary one (no fsync: a
    power cut may still lose the newest files, which a re-run redoes)."""
    def write(tmp: str) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data, path)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size != len(data):
            raise OSError(errno.EIO, f'wrote {size} of {len(data)} bytes',
                          path)

    atomic_write(path, write)


def file_sha256(path: str) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
