"""What every backend's segmenter does the same way (torch-free).

A backend (the PyTorch model of a config, an exported ONNX model) says how
one crop of a photo becomes a model input (:meth:`PhotoSegmenter.
_prepare_piece`), how a batch of inputs becomes model-size
log-probabilities (:meth:`PhotoSegmenter._run`) and which inputs can share
a batch (:meth:`PhotoSegmenter._piece_key`). Everything around that is
here, once: reading only as much of a photo as needed, windows for
elongated photos, batching, stitching, the mask at the photo's size and
the report. ``apis.segment_files`` (folders) and the service drive any
backend through this interface.
"""
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .image import MAX_PIXELS, ImageLike, load_rgb, read_reduced
from .overlay import display_size, resize_view
from .resize import rescale_size
from .result import DamageResult, finish
from .tiles import MAX_ASPECT, aspect_windows, stitch
from .upsample import Combine, softmax_mean


@dataclass
class Prepared:
    """One photo ready for the model: its (H, W), its windows
    (:func:`~.tiles.aspect_windows`), the backend's input of each, and the
    decoded photo (maybe reduced: a view for the overlay; empty when no
    overlay is drawn)."""
    source: str
    size: Tuple[int, int]
    windows: list
    pieces: list
    rgb: np.ndarray


def window_crops(rgb: np.ndarray, size: Tuple[int, int],
                 windows: Sequence[Tuple[int, int, int, int]]
                 ) -> List[np.ndarray]:
    """The crop of each window (in the coordinates of the photo of
    ``size`` (H, W)) from ``rgb``, the photo or a reduced copy of it."""
    if len(windows) == 1:
        return [rgb]
    height, width = size
    fy, fx = rgb.shape[0] / height, rgb.shape[1] / width
    crops = []
    for y0, y1, x0, x1 in windows:
        top, left = int(y0 * fy + 0.5), int(x0 * fx + 0.5)
        crops.append(rgb[top:max(top + 1, int(y1 * fy + 0.5)),
                         left:max(left + 1, int(x1 * fx + 0.5))])
    return crops


def group_indices(keys: Sequence[Hashable]) -> List[List[int]]:
    """Indices grouped by equal key, groups in first-seen order."""
    groups: Dict[Hashable, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


class PhotoSegmenter:
    """Photos in, :class:`~.result.DamageResult` out, for any backend.

    A subclass sets ``classes``, ``palette``, ``identity`` (the same string
    for the same model and settings: the reuse rule), ``device``,
    ``min_region_fraction``, ``max_pixels``, ``full_probs``,
    ``resize_scale`` (the keep-ratio resize of its input, or None),
    ``max_aspect`` and ``combine``, and implements the three hooks.
    """
    classes: Tuple[str, ...] = ()
    palette: Sequence[Sequence[int]] = ()
    identity: str = ''
    device: str = 'cpu'
    min_region_fraction: float = 5e-4
    max_pixels: int = MAX_PIXELS
    full_probs: bool = False
    resize_scale: Optional[Tuple[int, int]] = None
    max_aspect: float = MAX_ASPECT
    combine: Combine = staticmethod(softmax_mean)

    # -- the backend's hooks --------------------------------------------
    def _prepare_piece(self, rgb: np.ndarray, source: str) -> Any:
        """The model input of one RGB uint8 crop."""
        raise NotImplementedError

    def _piece_key(self, piece: Any) -> Hashable:
        """Pieces with equal keys can share a batch."""
        raise NotImplementedError

    def _run(self, pieces: Sequence[Any]) -> np.ndarray:
        """(B, K, C, h, w) float32 model-size log-probabilities of pieces
        that share a key."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------
    def needed_size(self, width: int, height: int,
                    overlay_max_side: Optional[int] = 0) -> Tuple[int, int]:
        """(w, h) of a photo of ``width`` x ``height`` that is enough for
        the model's input (and a view of ``overlay_max_side``, 0: the
        photo's size, None: no view): what
        :func:`~.image.read_reduced` decodes at least."""
        if self.resize_scale is None:
            return width, height
        windows = aspect_windows(height, width, self.max_aspect)
        y0, y1, x0, x1 = windows[0]
        ww, wh = rescale_size(x1 - x0, y1 - y0, self.resize_scale)
        f = max(ww / (x1 - x0), wh / (y1 - y0))
        vw, vh = ((1, 1) if overlay_max_side is None else
                  display_size(width, height, overlay_max_side))
        return (min(width, max(vw, int(width * f + 1))),
                min(height, max(vh, int(height * f + 1))))

    def prepare(self, rgb: np.ndarray, source: str,
                size: Optional[Tuple[int, int]] = None) -> Prepared:
        """Model inputs of one photo: ``rgb`` is the photo, or a reduced
        copy of a photo of ``size`` (H, W) (:meth:`prepare_file`).
        Elongated photos become windows (:mod:`~.tiles`)."""
        size = tuple(size or rgb.shape[:2])
        windows = aspect_windows(*size, self.max_aspect)
        pieces = [self._prepare_piece(crop, source)
                  for crop in window_crops(rgb, size, windows)]
        return Prepared(source, size, windows, pieces, rgb)

    def prepare_file(self, path: str, overlay_max_side: Optional[int] = 0
                     ) -> Prepared:
        """:meth:`prepare` of a photo file, decoded only as large as the
        model and a view of ``overlay_max_side`` need (JPEG DCT scaling,
        :func:`~.image.read_reduced`; None: no view, ``rgb`` is empty).
        Safe to call in data-loader worker processes and threads."""
        rgb, size = read_reduced(
            path, lambda w, h: self.needed_size(w, h, overlay_max_side),
            self.max_pixels)
        prepared = self.prepare(rgb, path, size)
        if overlay_max_side is None:
            prepared.rgb = np.zeros((0, 0, 3), np.uint8)
        elif overlay_max_side:  # only the view the overlay needs crosses
            prepared.rgb = resize_view(rgb, display_size(  # processes
                size[1], size[0], overlay_max_side), enlarge=False)
        return prepared

    def forward(self, prepared: Sequence[Prepared]) -> List[np.ndarray]:
        """Model-size log-probabilities (K, C, h, w) of each prepared
        photo (windows stitched). Pieces of one key share a batch."""
        pieces = [(i, piece) for i, p in enumerate(prepared)
                  for piece in p.pieces]
        outputs: List[Optional[np.ndarray]] = [None] * len(pieces)
        for idx in group_indices([self._piece_key(piece)
                                  for _, piece in pieces]):
            batch = self._run([pieces[k][1] for k in idx])
            for k, out in zip(idx, batch):
                outputs[k] = out
        results = []
        for i, p in enumerate(prepared):
            parts = [out for (j, _), out in zip(pieces, outputs) if j == i]
            results.append(stitch(parts, p.windows, *p.size))
        return results

    def finish(self, log_probs: np.ndarray, size: Tuple[int, int],
               source: str = '') -> DamageResult:
        """The mask at the photo's ``size`` (H, W), scores and report of
        one photo from its model-size log-probabilities."""
        return finish(log_probs, size, source, self.combine, self.classes,
                      self.min_region_fraction, self.full_probs)

    def predict_arrays(self, images: Sequence[np.ndarray],
                       sources: Sequence[str]) -> List[DamageResult]:
        """Segment RGB uint8 arrays (:meth:`prepare`, :meth:`forward`,
        :meth:`finish`)."""
        prepared = [self.prepare(img, src)
                    for img, src in zip(images, sources)]
        return [self.finish(lp, p.size, p.source) for lp, p in
                zip(self.forward(prepared), prepared)]

    def __call__(self, images: Union[ImageLike, Sequence[ImageLike]],
                 batch_size: int = 1) -> List[DamageResult]:
        """Segment one photo or a list (or tuple) of them: paths (``str``
        or ``pathlib.Path``), PIL images, numpy arrays (RGB), encoded
        bytes or binary file objects (:func:`~.image.load_rgb`)."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        results = []
        for start in range(0, len(images), batch_size):
            loaded = [load_rgb(item, start + k, self.max_pixels)
                      for k, item in
                      enumerate(images[start:start + batch_size])]
            results.extend(self.predict_arrays([a for a, _ in loaded],
                                               [s for _, s in loaded]))
        return results
