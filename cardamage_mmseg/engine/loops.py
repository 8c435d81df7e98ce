"""Validation and test loops under autocast with a chosen dtype."""
from typing import Dict, List, Sequence, Union

import torch
from mmengine.runner import TestLoop, ValLoop
from mmengine.runner.amp import autocast
from mmengine.runner.loops import _update_losses
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

from .amp import AMP_DTYPES


def _dtype(name: str) -> torch.dtype:
    if name not in AMP_DTYPES:
        raise ValueError(f'amp dtype {name!r}: choose from '
                         f'{sorted(AMP_DTYPES)}')
    return AMP_DTYPES[name]


class _AmpIterMixin:
    """``run_iter`` of mmengine's Val/TestLoop under ``autocast(dtype)``."""
    stage = ''  # 'val' or 'test'

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        stage = self.stage
        self.runner.call_hook(
            f'before_{stage}_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(dtype=self.dtype):
            outputs = getattr(self.runner.model, f'{stage}_step')(data_batch)
        outputs, losses = _update_losses(outputs,
                                         getattr(self, f'{stage}_loss'))
        setattr(self, f'{stage}_loss', losses)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(f'after_{stage}_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)


@LOOPS.register_module()
class AmpValLoop(_AmpIterMixin, ValLoop):
    """mmengine's ``ValLoop`` with mixed precision in ``dtype``.

    Why this is ours: mmengine's ``fp16=True`` autocasts in the device's
    default dtype (float16 on CUDA) and has no ``dtype`` argument; training
    in bfloat16 should validate in bfloat16.
    """
    stage = 'val'

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Dict, List], dtype: str = 'bf16') -> None:
        super().__init__(runner, dataloader, evaluator, fp16=True)
        self.dtype = _dtype(dtype)


@LOOPS.register_module()
class AmpTestLoop(_AmpIterMixin, TestLoop):
    """mmengine's ``TestLoop`` with mixed precision in ``dtype`` (see
    :class:`AmpValLoop`)."""
    stage = 'test'

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Dict, List], dtype: str = 'bf16') -> None:
        super().__init__(runner, dataloader, evaluator, fp16=True)
        self.dtype = _dtype(dtype)
