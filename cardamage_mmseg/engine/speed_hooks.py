"""Speed switches applied to a built model: channels_last memory format and
``torch.compile`` of the network's submodules."""
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

#: submodules of an mmseg segmentor that hold the network (compiled in place,
#: so checkpoints keep their plain parameter names)
NETWORK_PARTS = ('backbone', 'neck', 'decode_head', 'auxiliary_head')


def _network(model: nn.Module) -> nn.Module:
    """The segmentor inside a DDP wrapper or mmseg's ``SegTTAModel``."""
    if is_model_wrapper(model):
        model = model.module
    if not hasattr(model, 'backbone') and isinstance(
            getattr(model, 'module', None), nn.Module):
        model = model.module
    return model


def _inputs_channels_last(module, args, output):
    if isinstance(output, dict) and torch.is_tensor(output.get('inputs')):
        x = output['inputs']
        if x.dim() == 4:
            output['inputs'] = x.contiguous(memory_format=torch.channels_last)
    return output


def _segmentors(model: nn.Module) -> List[nn.Module]:
    """The segmentors whose network runs: the model itself, or a
    distiller's student and its frozen teacher (outside the module tree)."""
    found = [model] if hasattr(model, 'backbone') else []
    for name in ('student', 'teacher'):
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            found.append(part)
    return found


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put 4-D parameters and the preprocessed inputs in channels_last.

    The data preprocessor gets a forward hook, so every path that goes
    through it (train, val, test, :class:`DamageSegmenter`) sees NHWC
    batches. Values are unchanged; convolutions pick NHWC kernels. A
    distiller's teacher is converted too.
    """
    model = _network(model)
    model.to(memory_format=torch.channels_last)  # the whole module tree
    teacher = getattr(model, 'teacher', None)  # a distiller's, outside it
    if isinstance(teacher, nn.Module):
        teacher.to(memory_format=torch.channels_last)
    pre = getattr(model, 'data_preprocessor', None)
    if pre is not None and not getattr(pre, '_cardamage_nhwc', False):
        pre.register_forward_hook(_inputs_channels_last)
        pre._cardamage_nhwc = True
    return model


def compile_network(model: nn.Module, **compile_kwargs) -> nn.Module:
    """``torch.compile`` the segmentor's network parts in place.

    The backbone/neck/heads, not the pre/post-processing (which works on
    data samples): the graphs stay whole and the state dict keys unchanged
    (``nn.Module.compile`` works in place, no ``_orig_mod.`` prefix). For a
    distiller: the student's and the teacher's.
    """
    model = _network(model)
    parts = [getattr(seg, name, None) for seg in _segmentors(model)
             for name in NETWORK_PARTS]
    parts = [p for p in parts if isinstance(p, nn.Module)]
    if not parts:
        raise ValueError(f'{type(model).__name__} has none of '
                         f'{NETWORK_PARTS} to compile')
    for part in parts:
        part.compile(**compile_kwargs)
    return model


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model and its input batches to channels_last at start.

    Why this is ours: mmengine has no memory-format switch. Helps
    convolution-heavy models (DeepLabV3, UperNet heads) on tensor cores;
    measure before keeping it on.
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        to_channels_last(runner.model)


@HOOKS.register_module()
class CompileNetworkHook(Hook):
    """``torch.compile`` the network at the start of a run
    (:func:`compile_network`): training, validation and testing.

    Why this is ours: mmengine's ``compile`` option compiles the whole
    ``train_step``, optimizer step included; with torch 2.14 dynamo fails on
    it (``'UserDefinedDictVariable' object has no attribute 'items'`` in
    ``Adam.step``, measured here), and it never compiles testing. Compiling
    the network only keeps the optimizer eager (fused AdamW is one kernel
    anyway) and serves every stage.

    Args:
        compile_cfg (dict, optional): ``torch.compile`` keyword arguments
            (``mode``, ``backend``, ``dynamic``...).
    """
    priority = 'LOW'

    def __init__(self, compile_cfg: Optional[dict] = None) -> None:
        self.compile_cfg = dict(compile_cfg or {})
        self._done = False

    def before_run(self, runner) -> None:
        if not self._done:
            compile_network(runner.model, **self.compile_cfg)
            self._done = True
