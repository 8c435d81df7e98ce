"""``OnnxSegmenter``: an exported model (``tools/export.py``) segments
photos with ONNX Runtime, numpy, Pillow and OpenCV only: no torch, mmcv or
mmseg.

The photo is fitted to the model as the PyTorch path does (mmcv's
keep-ratio ``Resize`` re-implemented in :mod:`~..core.resize`: the same
sizes, pixels within rounding), padded with the normalisation mean
(mmseg pads the normalised input with 0), and the graph normalises and
returns log-probabilities at the input's resolution; from there the
shared core (:class:`~..core.segmenter.PhotoSegmenter`) makes the mask at
the photo's size and the report, as for the PyTorch backend.

    >>> seg = OnnxSegmenter('segformer_b0.onnx', threads=2)
    >>> [result] = seg('car.jpg')
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..core.fusion import FUSION_RULES, TermFusion
from ..core.image import MAX_PIXELS
from ..core.outputs import model_identity
from ..core.resize import resize_for_model
from ..core.segmenter import PhotoSegmenter
from ..core.tiles import MAX_ASPECT, max_aspect_for
from .metadata import ModelFileError, parse_metadata
from .shaped_sessions import ShapedSessions

#: the session option that ends the intra-op threads' spin-wait when a run
#: returns. Else they spin on, on the cores that the work after the run
#: needs (the mask at the photo's size, the report, the next batch's
#: photos, another model): on 2 cores SegFormer-b0 in PyTorch ran at 8.08
#: images/s right after a run, 10.12 after another PyTorch call and 10.16
#: after a run with this option, which costs the run nothing (16.07
#: images/s without, 17.12 with it; benchmarks/ort_spin.py)
SPIN_STOP = ('session.force_spinning_stop', '1')


def is_onnx_file(path: Any) -> bool:
    """Whether ``path`` names an exported model (``*.onnx``)."""
    return isinstance(path, (str, os.PathLike)) and \
        os.fspath(path).lower().endswith('.onnx')


def _ort():
    try:
        import onnxruntime
    except ImportError as err:
        raise ModelFileError(
            f'running an exported model needs onnxruntime ({err}): pip '
            f'install onnxruntime (or cardamage-mmseg[runtime])') from None
    return onnxruntime


def providers_for(device: str, available: Sequence[str]) -> list:
    """ONNX Runtime execution providers for ``device`` ('cpu', 'cuda',
    'cuda:N'). A CUDA device needs an onnxruntime build with the CUDA
    provider (``onnxruntime-gpu``)."""
    device = str(device)
    if device == 'cpu':
        return ['CPUExecutionProvider']
    if device.startswith('cuda'):
        if 'CUDAExecutionProvider' not in available:
            raise ModelFileError(
                f'device {device}: this onnxruntime has no CUDA provider '
                f'(it has {list(available)}): install onnxruntime-gpu, or '
                f'use --device cpu')
        index = int(device.split(':')[1]) if ':' in device else 0
        return [('CUDAExecutionProvider', dict(device_id=index)),
                'CPUExecutionProvider']
    raise ModelFileError(f'device {device!r}: use cpu, cuda or cuda:N')


def ensemble_fusion(meta: Dict[str, Any], path: str) -> TermFusion:
    """The core fusion of an exported ensemble's terms (its metadata's
    ``fusion``: rule, member weights, background index)."""
    fusion, terms = meta['fusion'], int(meta['terms'])
    rule, weights = fusion.get('rule'), list(fusion.get('weights') or [])
    if rule not in FUSION_RULES:
        raise ModelFileError(f'{path}: fusion rule {rule!r} is not one of '
                             f'{FUSION_RULES}: upgrade cardamage-mmseg')
    if len(weights) != terms:
        raise ModelFileError(f'{path}: {len(weights)} fusion weights for '
                             f'{terms} members')
    return TermFusion(terms, rule, tuple(float(w) for w in weights),
                      int(fusion.get('background_index', 0)))


def padded_input(img: np.ndarray, pad_value: Sequence[float],
                 size_divisor: int = 1,
                 fixed_size: Optional[Sequence[int]] = None) -> np.ndarray:
    """(3, H, W) float32: ``img`` (h, w, 3) uint8 at the top left, the
    rest ``pad_value`` (per channel); (H, W) the multiples of
    ``size_divisor`` that fit it, or ``fixed_size`` (ValueError if it does
    not fit)."""
    h, w = img.shape[:2]
    if fixed_size:
        ph, pw = fixed_size
        if h > ph or w > pw:
            raise ValueError(f'the resized photo is {h}x{w}, larger than '
                             f'the model\'s fixed input {ph}x{pw}')
    else:
        d = max(1, int(size_divisor))
        ph, pw = -(-h // d) * d, -(-w // d) * d
    x = np.empty((3, ph, pw), np.float32)
    x[:] = np.asarray(pad_value, np.float32)[:, None, None]
    x[:, :h, :w] = img.transpose(2, 0, 1)
    return x


class OnnxSegmenter(PhotoSegmenter):
    """Load an exported model once; segment many photos (the methods and
    results of :class:`~cardamage_mmseg.apis.DamageSegmenter`).

    Args:
        model (str): The ``.onnx`` file.
        checkpoint: Must be None: the file holds the weights.
        device (str): 'cpu', 'cuda' or 'cuda:N' (CUDA needs
            ``onnxruntime-gpu``).
        tta (bool): Average with the horizontally flipped image.
        min_region_fraction (float): Smallest region counted in reports.
        max_pixels (int): Photos above this many pixels are refused.
        full_probs (bool): ``DamageResult.probs`` at the photo's size.
        threads (int, optional): ONNX Runtime's intra-op threads (default:
            its own, one per core).
        providers (list, optional): Execution providers, overriding
            ``device`` (e.g. ``['OpenVINOExecutionProvider']``).
        session_options: An ``onnxruntime.SessionOptions``, used as it
            is (``threads`` is applied to it; no shape sessions then:
            options cannot be copied). Without it, the runtime's options
            stop the threads' spin-wait when a run returns
            (:data:`SPIN_STOP`).
        shape_sessions (int): Sessions specialised to one input shape
            each, for the shapes met at least twice (ONNX Runtime folds
            the shape arithmetic; each holds a copy of the weights); 0:
            one session with free dimensions for every input
            (:mod:`~.shaped_sessions`).

    Options of the PyTorch backend that do not apply to an exported
    model (``cfg_options``, ``amp``, ``compile``, ``channels_last``,
    ``strict=False``) raise :class:`ModelFileError`.

    Raises:
        FileNotFoundError: ``model`` does not exist.
        ModelFileError: (a ``ValueError``) a file that is not an exported
            cardamage-mmseg model, a corrupt one, one that needs a newer
            runtime, or a device this onnxruntime cannot use.
    """

    def __init__(self, model: str, checkpoint: Optional[str] = None,
                 device: str = 'cpu', tta: bool = False,
                 min_region_fraction: float = 5e-4,
                 cfg_options: Optional[dict] = None,
                 amp: Optional[str] = None, compile: bool = False,
                 channels_last: bool = False, strict: bool = True,
                 full_probs: bool = False, max_pixels: int = MAX_PIXELS,
                 threads: Optional[int] = None,
                 providers: Optional[list] = None,
                 session_options: Any = None,
                 shape_sessions: int = 2) -> None:
        path = os.fspath(model)
        unused = dict(checkpoint=checkpoint, cfg_options=cfg_options,
                      amp=amp, compile=compile or None,
                      channels_last=channels_last or None,
                      strict=None if strict else False)
        given = [k for k, v in unused.items() if v is not None]
        if given:
            raise ModelFileError(
                f'{path}: {", ".join(given)} do(es) not apply to an '
                f'exported model (it holds its weights, its config and '
                f'its precision)')
        if not osp.isfile(path):
            raise FileNotFoundError(f'model file {path} not found')
        if shape_sessions < 0:
            raise ModelFileError(f'{path}: shape_sessions must be >= 0, '
                                 f'not {shape_sessions}')
        ort = _ort()

        def with_threads(options):
            if threads:
                options.intra_op_num_threads = int(threads)
            return options

        def new_options():
            options = ort.SessionOptions()
            options.add_session_config_entry(*SPIN_STOP)
            return with_threads(options)
        options = (with_threads(session_options)
                   if session_options is not None else new_options())
        try:
            providers = providers or providers_for(
                device, ort.get_available_providers())
            self.session = ort.InferenceSession(path, options,
                                                providers=providers)
        except ModelFileError:
            raise
        except Exception as err:  # onnxruntime's own error types
            raise ModelFileError(
                f'{path}: onnxruntime {ort.__version__} cannot load it '
                f'(a corrupt or truncated file, or a model that needs a '
                f'newer onnxruntime): {type(err).__name__}: '
                f'{str(err).strip()[:400]}') from None
        meta = parse_metadata(
            self.session.get_modelmeta().custom_metadata_map, path)
        self.meta: Dict[str, Any] = meta
        self.path = path
        self.device = str(device)
        self.tta = tta
        self.min_region_fraction = min_region_fraction
        self.full_probs = full_probs
        self.max_pixels = max_pixels
        self.classes = tuple(meta['classes'])
        self.palette = [list(c) for c in meta['palette']]
        fusion = meta.get('fusion')
        self.is_ensemble = bool(fusion)
        if self.is_ensemble:
            self.combine = ensemble_fusion(meta, path)
            self.tta = tta or bool(fusion.get('flip'))
        inp, out = meta['input'], meta['output']
        names = [i.name for i in self.session.get_inputs()]
        outs = [o.name for o in self.session.get_outputs()]
        if inp['name'] not in names or out['name'] not in outs:
            raise ModelFileError(f'{path}: the graph has inputs {names} and '
                                 f'outputs {outs}, its metadata names '
                                 f'{inp["name"]!r} and {out["name"]!r}')
        self._input, self._output = inp['name'], out['name']
        self.sessions = ShapedSessions(
            path, self.session, new_options,
            providers,
            limit=0 if session_options is not None else shape_sessions)
        self._pad_value = np.asarray(inp['pad_value'], np.float32)
        self._divisor = int(inp.get('size_divisor') or 1)
        self._fixed = tuple(inp['fixed_size']) if inp.get('fixed_size') \
            else None
        self._dynamic_batch = bool(meta.get('dynamic_batch', True))
        scale = meta['resize'].get('scale')
        self.resize_scale = tuple(scale) if scale else None
        self.max_aspect = (max_aspect_for(self.resize_scale)
                           if self.resize_scale else MAX_ASPECT)
        #: the reuse rule's model identity: this file, these settings
        self.identity = model_identity(
            ['onnx', json.dumps(meta, sort_keys=True), f'tta={self.tta}',
             f'min_region={min_region_fraction}'], [path])

    def __repr__(self) -> str:
        return (f'OnnxSegmenter({self.path!r}, classes={self.classes}, '
                f'providers={self.session.get_providers()})')

    # -- the backend's hooks --------------------------------------------
    def _padded(self, img: np.ndarray) -> np.ndarray:
        try:
            return padded_input(img, self._pad_value, self._divisor,
                                self._fixed)
        except ValueError as err:
            raise ModelFileError(f'{self.path}: {err}: export with '
                                 f'--dynamic') from None

    def _prepare_piece(self, rgb: np.ndarray, source: str):
        img = (resize_for_model(rgb, self.resize_scale)
               if self.resize_scale else rgb)
        img = np.ascontiguousarray(img)
        pieces = [self._padded(img)]
        if self.tta:
            pieces.append(self._padded(img[:, ::-1]))
        return pieces, img.shape[:2]

    def _piece_key(self, piece) -> tuple:
        return piece[0][0].shape

    def _session_run(self, batch: np.ndarray) -> np.ndarray:
        if self._dynamic_batch or len(batch) == 1:
            return self.sessions.run([self._output],
                                     {self._input: batch})[0]
        return np.concatenate([self._session_run(batch[i:i + 1])
                               for i in range(len(batch))])

    def _run(self, pieces) -> np.ndarray:
        h, w = pieces[0][1]
        terms = []
        for t in range(len(pieces[0][0])):
            out = self._session_run(np.stack([p[0][t] for p in pieces]))
            out = out[..., :h, :w]  # the padding away
            terms.append(out[..., ::-1] if t == 1 else out)  # flip back
        if len(terms) > 1:  # (B, M, T, C, h, w): each member's terms
            out = np.stack(terms, axis=2)  # together, as TermFusion reads
            out = out.reshape(len(out), -1, *out.shape[3:])
        else:
            out = terms[0]
        return np.ascontiguousarray(out, np.float32)
