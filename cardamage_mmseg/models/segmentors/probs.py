"""Class probabilities of any mmseg segmentor for a batch of raw images."""
import copy
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...core.segmenter import group_indices

#: decode heads whose ``seg_logits`` are already per-class scores
SCORE_HEADS = ('Mask2FormerHead', 'MaskFormerHead')


def predict_probs(model, inputs: List[Tensor], data_samples: list,
                  device='cpu', flip: bool = False) -> Tensor:
    """(B, C, H, W) probabilities at each image's original size.

    ``inputs`` are raw (un-normalised, BGR, CHW) image tensors whose
    samples share one ``ori_shape`` (else ValueError: group them with
    :func:`group_by_original_size`); the model's own data preprocessor
    normalises (and pads) them. ``data_samples`` are
    copied, never modified. Logits go through softmax; MaskFormer-style
    scores are normalised to sum to one. ``flip``: average with the
    prediction of the horizontally flipped images (flip TTA).
    """
    shapes = {tuple(s.ori_shape) for s in data_samples}
    if len(shapes) > 1:
        raise ValueError(f'one batch of images with different original '
                         f'sizes {sorted(shapes)}: predict each size apart '
                         f'(group_by_original_size)')
    probs = _probs_once(model, inputs, data_samples, device)
    if flip:
        flipped = [x.flip(-1) for x in inputs]
        probs = (probs + _probs_once(model, flipped, data_samples,
                                     device).flip(-1)) / 2
    return probs


def group_by_original_size(data_samples: Sequence) -> List[List[int]]:
    """Indices of the samples, grouped by ``ori_shape`` (first-seen order):
    the batches :func:`predict_probs` can stack."""
    return group_by_shape(data_samples, 'ori_shape')


def group_by_shape(data_samples: Sequence, key: str) -> List[List[int]]:
    """Indices of the samples, grouped by their metainfo ``key``
    (``ori_shape``, ``img_shape``), in first-seen order."""
    return group_indices([tuple(s.get(key)) for s in data_samples])


def _scores_once(model, inputs: List[Tensor], data_samples: list,
                 device) -> Tuple[Tensor, str]:
    """The model's ``seg_logits`` (B, C, H, W) for raw inputs, and what
    they are: 'logits', 'scores' (MaskFormer-style, >= 0) or 'sigmoid'
    (one channel, mmseg applied the sigmoid)."""
    samples = [copy.deepcopy(s) for s in data_samples]
    data = model.data_preprocessor(
        dict(inputs=[x.to(device) for x in inputs], data_samples=samples),
        False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    scores = torch.stack([r.seg_logits.data for r in results])
    head = getattr(model, 'decode_head', None)
    if type(head).__name__ in SCORE_HEADS:
        return scores, 'scores'
    return scores, 'sigmoid' if scores.shape[1] == 1 else 'logits'


def _to_probs(scores: Tensor, kind: str) -> Tensor:
    if kind == 'scores':
        return scores / scores.sum(dim=1, keepdim=True).clamp_min(1e-12)
    if kind == 'sigmoid':  # [background, foreground]
        return torch.cat([1 - scores, scores], dim=1)
    return F.softmax(scores, dim=1)


def _probs_once(model, inputs: List[Tensor], data_samples: list,
                device) -> Tensor:
    return _to_probs(*_scores_once(model, inputs, data_samples, device))


def predict_log_probs(model, inputs: List[Tensor], data_samples: list,
                      device='cpu', flip: bool = False) -> Tensor:
    """(B, T, C, h, w) log-probabilities at each image's *model* size: the
    resized input before padding (``img_shape``), which the images of one
    batch must share. T is 2 with ``flip`` (the flipped pass, flipped
    back), else 1.

    The samples' ``ori_shape`` is set to ``img_shape`` (on copies), so the
    model's own post-processing crops the padding and stops there; the
    caller upsamples to the photo (``core.upsample``, band by band).
    Softmax heads give ``log_softmax`` of the logits (upsampling these and
    taking a softmax equals mmseg's upsample-then-softmax); MaskFormer-style
    scores and sigmoid heads give the log of their probabilities.
    """
    shapes = {tuple(s.img_shape) for s in data_samples}
    if len(shapes) > 1:
        raise ValueError(f'one batch of images with different model sizes '
                         f'{sorted(shapes)}: predict each size apart')
    samples = [copy.deepcopy(s) for s in data_samples]
    for s in samples:
        s.set_metainfo(dict(ori_shape=tuple(s.img_shape)))
    terms = [_log_probs_once(model, inputs, samples, device)]
    if flip:
        flipped = [x.flip(-1) for x in inputs]
        terms.append(_log_probs_once(model, flipped, samples,
                                     device).flip(-1))
    return torch.stack(terms, dim=1)


def _log_probs_once(model, inputs: List[Tensor], data_samples: list,
                    device) -> Tensor:
    scores, kind = _scores_once(model, inputs, data_samples, device)
    scores = scores.float()
    if kind == 'logits':
        return F.log_softmax(scores, dim=1)
    return _to_probs(scores, kind).clamp_min(1e-12).log()
