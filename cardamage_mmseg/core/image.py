"""Reading photos: one rule for every tool, converter and runtime.

A photo is read with its EXIF orientation applied (as phones, browsers and
annotation tools show it) and comes out as RGB uint8. Grayscale, palette and
RGBA/LA images are converted (alpha dropped); 16-bit and float images are
scaled (:func:`scale_to_uint8`), never saturated. A photo above the pixel
limit (:data:`MAX_PIXELS`, the same for every tool and the service) is an
:class:`ImageReadError`, found from the header before any pixel is decoded.
"""
import io
import os
import warnings
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps

#: what :func:`load_rgb` accepts
ImageLike = Union[str, os.PathLike, np.ndarray, Image.Image, bytes,
                  bytearray, memoryview, io.IOBase]

#: PIL modes whose values are not 8-bit and need scaling
WIDE_MODES = ('I;16', 'I;16B', 'I;16L', 'I', 'F')

#: default pixel limit (width x height) of one photo: 100 MP
MAX_PIXELS = 100_000_000


class ImageReadError(ValueError):
    """An input image could not be read; the message names it."""


def scale_to_uint8(arr: np.ndarray, name: str = 'array') -> np.ndarray:
    """Pixel values to uint8. uint8 is kept; floats with max <= 1 are read
    as [0, 1] (x 255), as is bool; other values up to 255 are kept; larger
    ones (16-bit) are scaled by the image's own maximum; negatives clip to
    0. NaN or inf raise :class:`ImageReadError` (they would become arbitrary
    bytes)."""
    if arr.dtype == np.uint8:
        return arr
    is_float = arr.dtype.kind in 'fb'  # bool: a mask, shown as 0 / 255
    arr = arr.astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise ImageReadError(f'{name}: image holds NaN or infinite values')
    peak = float(arr.max()) if arr.size else 0.0
    top = 1.0 if is_float and peak <= 1.0 else max(peak, 255.0)
    return (arr / top * 255.0).clip(0, 255).round().astype(np.uint8)


def pil_to_rgb(img: Image.Image, name: str = 'image') -> np.ndarray:
    """An opened (already oriented) PIL image as RGB uint8."""
    if img.mode in WIDE_MODES:
        return np.stack([scale_to_uint8(np.asarray(img), name)] * 3, axis=-1)
    return np.asarray(img.convert('RGB'))


def encode_image(img: Image.Image, format: str, **params: Any) -> bytes:
    """``img`` encoded as ``format`` ('PNG', 'JPEG', ...) in memory: the
    bytes :func:`~.files.atomic_write_bytes` writes and checks."""
    buf = io.BytesIO()
    img.save(buf, format=format, **params)
    return buf.getvalue()


#: EXIF orientation tag and what each value asks a viewer to do
EXIF_ORIENTATION_TAG = 0x0112
ORIENTATIONS = {2: 'mirrored', 3: 'rotated 180', 4: 'flipped',
                5: 'transposed', 6: 'rotated 90', 7: 'transversed',
                8: 'rotated 270'}


def exif_orientation(path: str) -> int:
    """The EXIF orientation of an image file (1: upright or no tag; 0 for
    a file that cannot be read: others report that). Reads the header
    only."""
    try:
        with Image.open(path) as img:
            value = img.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:
        return 0
    return value if value in ORIENTATIONS else 1


def orientation_problem(img_path: str, seg_path: str) -> str:
    """'' if the photo has no EXIF turn, else why an image/mask pair with
    one cannot be trusted and the fix."""
    value = exif_orientation(img_path)
    if value not in ORIENTATIONS:
        return ''
    return (f'{img_path} carries EXIF orientation {value} '
            f'({ORIENTATIONS[value]}): OpenCV/mmcv turn the photo as they '
            f'load it, its mask {seg_path} is not turned, so they may not '
            f'line up. Save the photo upright without the tag (e.g. '
            f'PIL.ImageOps.exif_transpose(img).save(path)) and check that '
            f'the mask fits the upright photo; the converters in '
            f'tools/dataset_converters do both')


def check_pixels(width: int, height: int, name: str,
                 max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageReadError` if ``width x height`` is above
    ``max_pixels`` (0 or None: no limit)."""
    if max_pixels and width * height > max_pixels:
        raise ImageReadError(
            f'{name}: {width}x{height} is {width * height / 1e6:.1f} MP, '
            f'above the pixel limit of {max_pixels / 1e6:g} MP (raise it '
            f'with --max-pixels / max_pixels, or shrink the photo)')


def read_image_rgb(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any photo as RGB uint8 with its EXIF orientation applied.

    Raises :class:`ImageReadError` naming ``path`` for anything unreadable
    or above ``max_pixels``.
    """
    return _decode(path, path, max_pixels)


def _decode(source: Any, name: str, max_pixels: int = MAX_PIXELS
            ) -> np.ndarray:
    """Open ``source`` (a path or a binary stream) as an oriented RGB
    uint8 array; any failure is an :class:`ImageReadError` naming ``name``.
    """
    return _open_oriented(source, name, max_pixels)[0]


#: EXIF orientations that swap width and height
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def read_reduced(path: str, min_size: Callable[[int, int], Tuple[int, int]],
                 max_pixels: int = MAX_PIXELS
                 ) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Read a photo only as large as needed: (RGB uint8, (H, W) of the
    whole photo, EXIF orientation applied).

    ``min_size(W, H)`` gives the (w, h) the caller needs of the oriented
    photo (the model's input, an overlay). A JPEG is decoded at the
    smallest DCT scale (1, 1/2, 1/4, 1/8: Pillow's ``draft``) that is at
    least that large, a fraction of the work of a full decode; other
    formats are decoded whole. Errors as :func:`read_image_rgb`.
    """
    return _open_oriented(path, path, max_pixels, min_size)


def _open_oriented(source: Any, name: str, max_pixels: int,
                   min_size: Optional[Callable[[int, int],
                                               Tuple[int, int]]] = None
                   ) -> Tuple[np.ndarray, Tuple[int, int]]:
    """(oriented RGB uint8, (H, W) of the oriented photo) of ``source``;
    with ``min_size``, a JPEG is decoded only as large as it asks."""
    try:
        with warnings.catch_warnings():
            # our own limit applies (Pillow warns from 89 MP)
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            img = Image.open(source)
        with img:
            check_pixels(*img.size, name, max_pixels)
            raw_w, raw_h = img.size
            turned = img.getexif().get(EXIF_ORIENTATION_TAG, 1) in \
                SWAPPING_ORIENTATIONS
            width, height = (raw_h, raw_w) if turned else (raw_w, raw_h)
            if min_size is not None and img.format == 'JPEG':
                need_w, need_h = min_size(width, height)
                img.draft('RGB', (need_h, need_w) if turned else
                          (need_w, need_h))
            img.load()
            return pil_to_rgb(ImageOps.exif_transpose(img), name), (height,
                                                                   width)
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(f'cannot read image {name}: '
                             f'{type(err).__name__}: {err}') from None


def to_rgb_array(image: np.ndarray, name: str = 'array',
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Normalise a numpy image (H, W), (H, W, 1|3|4), any int/float/bool
    dtype (RGB order assumed) to RGB uint8 (values: :func:`scale_to_uint8`).
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageReadError(f'{name}: shape {arr.shape} is not an image')
    check_pixels(arr.shape[1], arr.shape[0], name, max_pixels)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    return np.ascontiguousarray(scale_to_uint8(arr, name))


def load_rgb(item: Any, index: int = 0, max_pixels: int = MAX_PIXELS
             ) -> Tuple[np.ndarray, str]:
    """Any photo an API caller may hold -> (RGB uint8, source name).

    A path (``str`` or ``os.PathLike``: :func:`read_image_rgb`), a PIL
    image, encoded bytes (``bytes``/``bytearray``/``memoryview``) or a
    binary file object (EXIF orientation applied to all three), or a numpy
    array (:func:`to_rgb_array`). The source is the path, else
    ``<image|bytes|file|array INDEX>``. Anything else raises ``TypeError``
    naming its type; one above ``max_pixels`` an :class:`ImageReadError`.
    """
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        return read_image_rgb(path, max_pixels), path
    if isinstance(item, np.ndarray):
        name = f'<array {index}>'
        return to_rgb_array(item, name, max_pixels), name
    if isinstance(item, Image.Image):
        name = f'<image {index}>'
        check_pixels(*item.size, name, max_pixels)
        return pil_to_rgb(ImageOps.exif_transpose(item), name), name
    if isinstance(item, (bytes, bytearray, memoryview)):
        name = f'<bytes {index}>'
        return _decode(io.BytesIO(bytes(item)), name, max_pixels), name
    if hasattr(item, 'read'):
        name = f'<file {index}>'
        return _decode(item, name, max_pixels), name
    raise TypeError(f'input {index}: {type(item).__name__} is not an image '
                    f'(give a path, a PIL image, a numpy array, encoded '
                    f'bytes or a binary file object)')
