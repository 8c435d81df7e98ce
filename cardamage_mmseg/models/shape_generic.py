"""Shape-generic forwards of mmseg modules that trace as one input size.

Why this is ours: ``torch.export`` (what ``torch.onnx.export(dynamo=True)``
runs) records Python arithmetic on shapes as constants when it cannot keep
it symbolic, and the exported graph is then right only for the batch and
size it was traced with. In mmseg 1.2.2's Swin (UperNet Swin-T):

- ``ShiftWindowMSA.window_reverse``: ``B = int(windows.shape[0] / (H * W /
  ws / ws))`` (float division): the traced batch becomes a constant, and
  ``view(B, ..., -1)`` silently folds any other batch into the channels
  (traced at batch 2, batch 1 differed by 3.1 here);
- ``AdaptivePadding`` (patch embedding and merging): ``math.ceil(h / s)``,
  ``max(.., 0)`` and ``if pad_h > 0 or pad_w > 0``: the traced size's
  padding is kept
  (a 227 x 301 input then gave a 7 x 10 instead of an 8 x 10 map);
- ``ShiftWindowMSA.forward``: ``if pad_r > 0 or pad_b`` before cropping;
- ``nn.AdaptiveAvgPool2d`` (UperNet's and PSPNet's pyramid pooling, to 1,
  2, 3, 6): the bins of the traced size are gathered by constant indices
  (on a small UperNet, ONNX Runtime failed at another size: ``GatherND``
  index out of range).

:func:`shape_generic` binds, for the duration of an export, forwards that
compute the same values with integer arithmetic (:func:`_pad_amount`;
``B = N // (H // ws * W // ws)``) and always pad and crop
(by zero where nothing is needed), so eager outputs are unchanged
(tested), and an adaptive average pool as two products with averaging
matrices built from the input's size (:func:`average_matrix`; equal to
PyTorch's up to float rounding, tested), so the graph holds for every
batch and size. Upstream weights
and module types stay as they are. MMDeploy rewrites the same functions
for its backends.
"""
from typing import ContextManager, Union

import torch
import torch.nn.functional as F
from mmseg.models.backbones.swin import ShiftWindowMSA
from mmseg.models.utils.embed import AdaptivePadding
from torch import Tensor, nn

from .bound_forwards import ForwardTable, bind_forwards


def _pad_amount(n, k: int, s: int, d: int):
    """``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` for an
    input of ``n``, kernel ``k``, stride ``s``, dilation ``d``. With
    ``ceil(n / s) * s - n = (s - n % s) % s`` this is ``(s - n % s) % s +
    (k - 1) * d + 1 - s``, >= 0 whenever the kernel spans the stride
    (``(k - 1) * d + 1 >= s``: patch embedding and merging): no ``max``,
    whose symbolic form grows too large for ``torch.export`` to simplify
    through four stages."""
    pad = (s - n % s) % s + (k - 1) * d + 1 - s
    return pad if (k - 1) * d + 1 >= s else torch.sym_max(pad, 0)


def _adaptive_padding_forward(self: AdaptivePadding, x: Tensor) -> Tensor:
    """``AdaptivePadding.forward``: pad so that the kernel covers ``x``
    (:func:`_pad_amount`), also by zero."""
    in_h, in_w = x.shape[-2:]
    pad_h = _pad_amount(in_h, self.kernel_size[0], self.stride[0],
                        self.dilation[0])
    pad_w = _pad_amount(in_w, self.kernel_size[1], self.stride[1],
                        self.dilation[1])
    if self.padding == 'corner':
        return F.pad(x, [0, pad_w, 0, pad_h])
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2,
                     pad_h - pad_h // 2])


def _window_reverse(self: ShiftWindowMSA, windows: Tensor, H: int,
                    W: int) -> Tensor:
    """(num_windows * B, ws, ws, C) -> (B, H, W, C)."""
    ws = self.window_size
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def _shift_window_forward(self: ShiftWindowMSA, query: Tensor,
                          hw_shape) -> Tensor:
    """``ShiftWindowMSA.forward`` (mmseg 1.2.2) that always pads to whole
    windows and crops back (both by zero when the size fits)."""
    B, L, C = query.shape
    H, W = hw_shape
    ws, shift = self.window_size, self.shift_size
    query = query.view(B, H, W, C)
    pad_r = (ws - W % ws) % ws
    pad_b = (ws - H % ws) % ws
    query = F.pad(query, (0, 0, 0, pad_r, 0, pad_b))
    H_pad, W_pad = query.shape[1], query.shape[2]
    attn_mask = None
    if shift > 0:
        query = torch.roll(query, shifts=(-shift, -shift), dims=(1, 2))
        img_mask = torch.zeros((1, H_pad, W_pad, 1), device=query.device)
        slices = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
        cnt = 0
        for h in slices:
            for w in slices:
                img_mask[:, h, w, :] = cnt
                cnt += 1
        mask_windows = self.window_partition(img_mask).view(-1, ws * ws)
        attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask != 0, -100.0
                                          ).masked_fill(attn_mask == 0, 0.0)
    windows = self.window_partition(query).view(-1, ws * ws, C)
    windows = self.w_msa(windows, mask=attn_mask).view(-1, ws, ws, C)
    x = _window_reverse(self, windows, H_pad, W_pad)
    if shift > 0:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    x = x[:, :H, :W, :].contiguous().view(B, H * W, C)
    return self.drop(x)


def _pair(size) -> tuple:
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def average_matrix(n: Union[int, torch.SymInt], out: int,
                   like: Tensor) -> Tensor:
    """The (out, n) matrix ``A`` of an adaptive average pool of ``n``
    values to ``out`` (PyTorch's bins)::

        A[i, j] = [s_i <= j < e_i] / (e_i - s_i),
        s_i = floor(i * n / out),  e_i = ceil((i + 1) * n / out)

    built with tensor arithmetic on ``n``, so a traced ``n`` stays
    symbolic; dtype and device of ``like``."""
    i = torch.arange(out, device=like.device).unsqueeze(1)
    j = torch.arange(n, device=like.device).unsqueeze(0)
    start = torch.div(i * n, out, rounding_mode='floor')
    end = torch.div((i + 1) * n + out - 1, out, rounding_mode='floor')
    inside = (j >= start) & (j < end)
    return inside.to(like.dtype) / (end - start).to(like.dtype)


def _adaptive_avg_pool_forward(self: nn.AdaptiveAvgPool2d,
                               x: Tensor) -> Tensor:
    """``AdaptiveAvgPool2d.forward`` as ``A_h @ x @ A_w^T``
    (:func:`average_matrix`); to one value: the mean."""
    out_h, out_w = _pair(self.output_size)
    if out_h == out_w == 1:
        return x.mean(dim=(-2, -1), keepdim=True)
    h, w = x.shape[-2:]
    rows = average_matrix(h, out_h, x)
    cols = average_matrix(w, out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _has_fixed_output(module: nn.Module) -> bool:
    """An adaptive pool whose output size is given in full (``None``
    keeps the input's size: left as it is)."""
    return None not in _pair(module.output_size)


#: module type -> its shape-generic forward, and which of them to bind
FORWARDS: ForwardTable = {
    AdaptivePadding: (_adaptive_padding_forward, None),
    ShiftWindowMSA: (_shift_window_forward, None),
    nn.AdaptiveAvgPool2d: (_adaptive_avg_pool_forward, _has_fixed_output),
}


def shape_generic(model: nn.Module) -> ContextManager[int]:
    """Within the block, ``model``'s modules listed in :data:`FORWARDS`
    run their shape-generic forward (see the module docstring); yields how
    many were bound. The modules' own forwards come back afterwards."""
    return bind_forwards(model, FORWARDS)
