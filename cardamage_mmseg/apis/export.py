"""Export a trained model to ONNX for the torch-free runtime, and check
the export on real photos.

Why this is ours: mmseg 1.2.2 has no working export (its
``tools/deployment/pytorch2torchscript.py`` calls ``forward_dummy``, which
1.x segmentors lack) and MMDeploy needs the OpenMMLab build on the target.
The graph here is what the PyTorch backend computes between the resized
photo and the model-size log-probabilities::

    image (N, 3, H, W) float32, RGB, 0..255, padded with the mean
    -> channel order of the model -> (x - mean) / std
    -> backbone, neck, decode head -> bilinear resize to (H, W)
    -> log_softmax over classes -> (N, 1, C, H, W)

(``torch.onnx.export(..., dynamo=True)``, batch, height and width free;
a SegFormer head fuses its stages per stage, the same function of the same
weights with a third of the arithmetic: :mod:`~..models.stagewise_fusion`;
SegFormer's attention is one ONNX Runtime ``MultiHeadAttention`` node
unless ``standard_ops``: :mod:`~..models.ort_attention`; with two classes
the resize takes the logits' difference, one channel, which the resize,
being linear, allows: :func:`log_softmax_two`).
An ensemble config exports as one graph of its members, (N, M, C, H, W),
and its fusion rule; the file carries everything the runtime needs as
metadata
(:mod:`~..runtime.metadata`). Resizing the photo, the mask at the photo's
size and the report stay in the shared core.
"""
import contextlib
import hashlib
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import cv2
import mmseg
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.files import IMAGE_SUFFIXES, file_sha256
from ..core.image import read_image_rgb
from ..models.ort_attention import ort_attention, translation
from ..models.segmentors.probs import SCORE_HEADS
from ..models.shape_generic import shape_generic
from ..models.stagewise_fusion import stagewise_fusion
from ..runtime.metadata import METADATA_KEY, dump_metadata
from ..core.resize import resize_for_model
from ..runtime.onnx_segmenter import OnnxSegmenter, padded_input
from ..utils.config import ConfigError
from ..version import __version__
from .inference import DamageSegmenter

#: ONNX opset of the exported graphs (onnxruntime >= 1.17 runs it). 20,
#: not 18: opset 20 has ``Gelu``, so each GELU is one node; at 18 it is
#: five (``x * (0.5 * (1 + erf(x / sqrt 2)))``), which onnxruntime 1.32's
#: GELU fusion does not match (SegFormer-b0, HF head, batch 2 on 2 CPU
#: cores: 13.8 -> 14.7 images/s, same outputs within 2e-7)
OPSET = 20


class ExportGraph(nn.Module):
    """The exported computation of one mmseg ``EncoderDecoder`` (module
    docstring): raw RGB in, (N, 1, C, H, W) log-probabilities out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        pre = model.data_preprocessor
        #: the model was trained on RGB (mmseg's bgr_to_rgb): the input
        #: is used as it is; else it is turned to BGR
        self.to_bgr = not pre.channel_conversion
        mean = pre.mean if pre._enable_normalize else torch.zeros(3, 1, 1)
        std = pre.std if pre._enable_normalize else torch.ones(3, 1, 1)
        self.register_buffer('mean', mean.float().view(1, 3, 1, 1).clone())
        self.register_buffer('std', std.float().view(1, 3, 1, 1).clone())
        self.align_corners = model.decode_head.align_corners

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.flip(1) if self.to_bgr else image
        x = (x - self.mean) / self.std
        logits = self.model.decode_head.forward(self.model.extract_feat(x))
        if logits.shape[1] == 2:  # the difference, resized: one channel
            d = F.interpolate(logits[:, 1:2] - logits[:, 0:1],
                              size=x.shape[2:], mode='bilinear',
                              align_corners=self.align_corners)
            return log_softmax_two(d).unsqueeze(1)
        logits = F.interpolate(logits, size=x.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
        return log_softmax_classes(logits).unsqueeze(1)


def log_softmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over axis 1, written for ONNX Runtime's CPU kernels.

    ONNX Runtime's LogSoftmax on axis 1 of an NCHW tensor transposes there
    and back (15 ms of 250 for SegFormer-b0 at batch 2, 512 x 512), so it
    is ``x - logsumexp(x)``. For two classes the reduction over a strided
    axis is replaced by element-wise maths on ``d = x1 - x0``::

        log p0 = -softplus(d),  log p1 = -softplus(-d),
        softplus(t) = max(t, 0) + log(1 + exp(-|d|))

    (SegFormer-b0, batch 2: 4.4 -> 1.2 ms of kernel time; float64 gives
    log_softmax's values within 1e-12, float32 within 1e-5).
    """
    if logits.shape[1] != 2:
        return logits - torch.logsumexp(logits, 1, keepdim=True)
    return log_softmax_two(logits[:, 1:2] - logits[:, 0:1])


def log_softmax_two(d: torch.Tensor) -> torch.Tensor:
    """Two classes' log-probabilities (N, 2, H, W) from ``d = x1 - x0``
    (N, 1, H, W) (:func:`log_softmax_classes`). The export resizes ``d``
    rather than both logits: ``up(x1) - up(x0) = up(x1 - x0)``, and ONNX
    Runtime resized the two classes in a 16-channel blocked layout
    (SegFormer-b0 (HF head), batch 2, 512 x 512, profiler kernel time:
    resize 9.95 -> 7.54 ms, layout reorders 2.56 -> 1.33 ms per run)."""
    tail = torch.log(1 + torch.exp(-d.abs()))
    return -torch.cat([d.clamp(min=0) + tail, (-d).clamp(min=0) + tail], 1)


class EnsembleGraph(nn.Module):
    """An ensemble's members (one :class:`ExportGraph` each, with its own
    channel order and mean/std) on the same input: (N, M, C, H, W)
    log-probabilities, member by member. The fusion rule is the file's
    metadata and runs in the shared core at the photo's size, as for the
    PyTorch ensemble (fusing at the model's size would change hard
    rules' masks)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(ExportGraph(m) for m in members)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([g(image) for g in self.members], dim=1)


def _check_model(model: nn.Module, what: str) -> None:
    """Raise :class:`ConfigError` if one mmseg model cannot be exported."""
    head = getattr(model, 'decode_head', None)
    if head is None or not hasattr(model, 'extract_feat'):
        raise ConfigError(f'{what}: {type(model).__name__} is not an '
                          f'encoder-decoder: cannot export')
    if type(head).__name__ in SCORE_HEADS:
        raise ConfigError(
            f'{what}: {type(head).__name__} predicts masks per query and '
            f'classifies them (test-time matching of queries to classes in '
            f'Python): no single-graph export here; use the PyTorch path')
    if head.out_channels == 1:
        raise ConfigError(f'{what}: a one-channel (sigmoid) head cannot '
                          f'be exported yet')
    mode = (model.test_cfg or {}).get('mode', 'whole')
    if mode != 'whole':
        raise ConfigError(
            f'{what}: test_cfg.mode={mode!r}: only whole-image inference '
            f'exports (add --cfg-options model.test_cfg.mode=whole)')


def check_exportable(seg: DamageSegmenter, config: str) -> None:
    """Raise :class:`ConfigError` saying why ``seg``'s model cannot be
    exported (a slide-window test mode, a MaskFormer-style or sigmoid
    head, a test pipeline the runtime does not re-implement; for an
    ensemble, any of these in a member, or a member that pads its input
    at test time)."""
    if seg.is_ensemble:
        for i, (model, files) in enumerate(zip(seg.model.members,
                                               seg.model.member_files)):
            what = f'{config}: member {i} ({files["config"]})'
            _check_model(model, what)
            test_cfg = model.data_preprocessor.test_cfg or {}
            if test_cfg.get('size') or test_cfg.get('size_divisor'):
                raise ConfigError(
                    f'{what} pads its test input ({dict(test_cfg)}): the '
                    f'members of an exported ensemble take the same '
                    f'unpadded input; export the members and fuse with '
                    f'tools/ensemble.py')
    else:
        _check_model(seg.model, config)
    if not seg._channel_blind or seg.resize_scale is None:
        steps = [t['type'] for t in seg.cfg.test_dataloader.dataset.pipeline]
        raise ConfigError(
            f'{config}: the runtime re-implements a test pipeline of one '
            f'keep-ratio Resize only; this one has {steps}')


def _graph_input(graph: ExportGraph) -> Dict[str, Any]:
    """What the runtime needs to know of one graph's input: mean/std (in
    the model's channel order), that order, and the raw value padding
    takes (mmseg pads after normalising, with ``pad_val``)."""
    pre = graph.model.data_preprocessor
    mean = graph.mean.flatten().tolist()
    std = graph.std.flatten().tolist()
    pad = [float(pre.pad_val) * s + m for m, s in zip(mean, std)]
    if graph.to_bgr:  # the runtime pads the RGB input
        pad = pad[::-1]
    return dict(mean=mean, std=std, pad_value=pad,
                model_channel_order='BGR' if graph.to_bgr else 'RGB')


def _checkpoint_entry(checkpoint: str) -> Dict[str, str]:
    return dict(name=osp.basename(checkpoint), sha256=file_sha256(checkpoint))


def export_metadata(seg: DamageSegmenter, graph: nn.Module, config: str,
                    checkpoint: Optional[str], dynamic: bool,
                    fixed_size: Optional[Sequence[int]]) -> Dict[str, Any]:
    """The runtime's metadata (:mod:`~..runtime.metadata`) of ``seg``
    (``graph``: its :class:`ExportGraph` or :class:`EnsembleGraph`).
    ``exporter.contrib_ops``: the onnxruntime-only ops of the graph, which
    :func:`export_onnx` fills in."""
    fusion, terms = None, 1
    if isinstance(graph, EnsembleGraph):
        members = [dict(_graph_input(g), config=osp.basename(f['config']),
                        checkpoint=_checkpoint_entry(f['checkpoint']))
                   for g, f in zip(graph.members, seg.model.member_files)]
        fusion = dict(rule=seg.model.fusion, weights=list(seg.model.weights),
                      background_index=int(seg.model.background_index),
                      flip=bool(seg.model.flip), members=members)
        terms = len(members)
        # the members' input is never padded (check_exportable)
        given = dict(mean=None, std=None, model_channel_order=None,
                     pad_value=members[0]['pad_value'])
        divisor = 1
        checkpoints = [m['checkpoint'] for m in members]
    else:
        given = _graph_input(graph)
        test_cfg = seg.model.data_preprocessor.test_cfg or {}
        divisor = int(test_cfg.get('size_divisor') or 1)
        checkpoints = [_checkpoint_entry(checkpoint)] if checkpoint else []
    return dict(
        classes=list(seg.classes),
        palette=[[int(v) for v in c] for c in seg.palette],
        input=dict(name='image', layout='NCHW', channel_order='RGB',
                   dtype='float32', value_range=[0, 255],
                   normalization='in_graph', mean=given['mean'],
                   std=given['std'],
                   model_channel_order=given['model_channel_order'],
                   pad_value=given['pad_value'], size_divisor=divisor,
                   fixed_size=list(fixed_size) if fixed_size else None),
        resize=dict(type='keep_ratio', scale=list(seg.resize_scale)),
        output=dict(name='log_probs', layout='NTCHW', kind='log_softmax',
                    resolution='input'),
        terms=terms, fusion=fusion, dynamic_batch=dynamic,
        source=dict(
            config=osp.basename(config),
            config_sha256=hashlib.sha256(
                seg.cfg.pretty_text.encode('utf-8')).hexdigest(),
            checkpoints=checkpoints),
        exporter=dict(cardamage_mmseg=__version__,
                      torch=torch.__version__.split('+')[0],
                      mmseg=mmseg.__version__, opset=OPSET,
                      contrib_ops=[]))


def _write_with_metadata(program, path: str, meta: Dict[str, Any]) -> None:
    program.model.metadata_props[METADATA_KEY] = dump_metadata(meta)
    program.save(path)


def set_metadata(path: str, meta: Dict[str, Any]) -> None:
    """Store ``meta`` in the ONNX file ``path`` (in place)."""
    import onnx
    model = onnx.load(path)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, dump_metadata(meta)
    onnx.save(model, path)


def export_onnx(seg: DamageSegmenter, config: str, checkpoint: Optional[str],
                path: str, sample: np.ndarray, dynamic: bool = True,
                standard_ops: bool = False) -> Dict[str, Any]:
    """Write ``seg``'s model to ``path`` (see the module docstring);
    ``sample``: an RGB photo whose model input traces the graph. Not
    ``dynamic``: batch 1 and one input size (the config's padding size,
    else the sample's), photos that resize to more are refused.
    ``standard_ops``: ONNX's own ops only (no onnxruntime contrib op), for
    other runtimes. Returns the metadata written."""
    check_exportable(seg, config)
    graph = (EnsembleGraph(seg.model.members) if seg.is_ensemble
             else ExportGraph(seg.model)).eval().cpu()
    test_cfg = seg.model.data_preprocessor.test_cfg or {}
    fixed = None if dynamic else test_cfg.get('size')
    meta = export_metadata(seg, graph, config, checkpoint, dynamic, fixed)
    x = padded_input(resize_for_model(sample, seg.resize_scale),
                     meta['input']['pad_value'],
                     meta['input']['size_divisor'], fixed)
    if not dynamic:  # one input size: the sample's, padded
        meta['input']['fixed_size'] = list(x.shape[1:])
    dummy = torch.from_numpy(np.stack([x, x]) if dynamic else x[None])
    shapes = None
    if dynamic:
        batch = torch.export.Dim('batch', min=1, max=1024)
        shapes = ({0: batch, 2: torch.export.Dim('height', min=32,
                                                  max=8192),
                   3: torch.export.Dim('width', min=32, max=8192)},)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        stack.enter_context(shape_generic(graph))
        stack.enter_context(stagewise_fusion(graph))
        if not standard_ops and stack.enter_context(ort_attention(graph)):
            meta['exporter']['contrib_ops'] = ['MultiHeadAttention']
        try:
            program = torch.onnx.export(
                graph, (dummy,), dynamo=True, opset_version=OPSET,
                input_names=['image'], output_names=['log_probs'],
                dynamic_shapes=shapes, verbose=False,
                custom_translation_table=translation())
        except Exception as err:
            raise ConfigError(
                f'{config}: torch.onnx.export failed'
                + (' with dynamic shapes (try --static)' if dynamic
                   else '') + f': {type(err).__name__}: '
                f'{str(err).strip().splitlines()[0][:300]}') from None
    _write_with_metadata(program, path, meta)
    return meta


@dataclass
class Agreement:
    """How an exported model's outputs compare with PyTorch's on photos:
    the largest absolute log-probability difference (model size), and the
    share of equal labels at the model's size and at the photos' size
    (overall and the worst photo)."""
    photos: int = 0
    max_abs_diff: float = 0.0
    model_size_agreement: float = 1.0
    mask_agreement: float = 1.0
    worst_mask_agreement: float = 1.0
    rows: List[Dict] = field(default_factory=list)


def compare(reference: DamageSegmenter, exported: OnnxSegmenter,
            photos: Sequence[str],
            progress: Optional[Callable[[str], None]] = None) -> Agreement:
    """:class:`Agreement` of ``exported`` with ``reference`` on
    ``photos``."""
    result = Agreement()
    same_small = total_small = same_full = total_full = 0
    for path in photos:
        rgb = read_image_rgb(path)
        [lp_ref] = reference.forward([reference.prepare(rgb, path)])
        try:
            [lp_onnx] = exported.forward([exported.prepare(rgb, path)])
        except Exception as err:  # onnxruntime's own error types
            raise ConfigError(
                f'{path}: the exported graph fails on this photo (model '
                f'input {lp_ref.shape[-2:]}): {type(err).__name__}: '
                f'{str(err).strip()[:300]}; a graph traced at one input '
                f'size that does not hold at others') from None
        if lp_ref.shape != lp_onnx.shape:
            raise ConfigError(f'{path}: the exported model gives '
                              f'{lp_onnx.shape}, PyTorch {lp_ref.shape}')
        diff = float(np.abs(lp_ref - lp_onnx).max())
        small = lp_ref.argmax(axis=1) == lp_onnx.argmax(axis=1)
        mask_ref = reference.finish(lp_ref, rgb.shape[:2]).mask
        mask_onnx = exported.finish(lp_onnx, rgb.shape[:2]).mask
        full = float((mask_ref == mask_onnx).mean())
        same_small += int(small.sum())
        total_small += small.size
        same_full += int((mask_ref == mask_onnx).sum())
        total_full += mask_ref.size
        result.max_abs_diff = max(result.max_abs_diff, diff)
        result.worst_mask_agreement = min(result.worst_mask_agreement, full)
        result.rows.append(dict(photo=path, max_abs_diff=diff,
                                mask_agreement=full))
        result.photos += 1
        if progress:
            progress(f'{osp.basename(path)}: max |d log p| {diff:.2e}, '
                     f'mask agreement {full:.6f}')
    if total_small:
        result.model_size_agreement = same_small / total_small
        result.mask_agreement = same_full / total_full
    return result


def other_size_photo(photo: str, folder: str) -> str:
    """A crop of ``photo`` of another shape and odd height and width
    (80% x 60%), written losslessly into ``folder``: verification photos
    often share one size (the bundled val photos are all 1024 x 1024),
    and a graph that holds only for its traced size must fail there."""
    rgb = read_image_rgb(photo)
    h, w = rgb.shape[:2]
    crop = rgb[:max(33, int(h * 0.8)) | 1, :max(33, int(w * 0.6)) | 1]
    path = osp.join(folder, 'other-size-' + osp.splitext(
        osp.basename(photo))[0] + '.png')
    cv2.imwrite(path, np.ascontiguousarray(crop[..., ::-1]))
    return path


def photos_in(folder: str, limit: int = 0) -> List[str]:
    """Image files directly in ``folder`` (sorted), at most ``limit``."""
    names = sorted(n for n in os.listdir(folder)
                   if osp.splitext(n)[1].lower() in IMAGE_SUFFIXES)
    paths = [osp.join(folder, n) for n in names]
    return paths[:limit] if limit else paths
