"""Hooks: RNG state in checkpoints, and a per-rank sample trace."""
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save torch's RNG states in checkpoints and restore them on resume.

    Why this is ours: mmengine re-seeds on resume and replays the data
    loader to the resumed iteration (which restores the data pipeline's
    numpy/python randomness), but torch's generator, which drives dropout
    and drop-path, starts over; the resumed loss curve then departs from an
    uninterrupted run. With this hook it continues (CPU and CUDA states).
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if not state or not runner._resume:
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            try:
                torch.cuda.set_rng_state_all(state['cuda'])
            except RuntimeError:  # a different number of GPUs
                pass


@HOOKS.register_module()
class SampleTraceHook(Hook):
    """Append the image paths of every training batch to
    ``work_dir/sample_trace_rank<r>.txt`` (a diagnostic: which rank saw
    which data)."""

    def __init__(self, filename: Optional[str] = None) -> None:
        self.filename = filename

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        if not data_batch:
            return
        path = self.filename or osp.join(
            runner.work_dir, f'sample_trace_rank{get_rank()}.txt')
        with open(path, 'a') as f:
            for sample in data_batch['data_samples']:
                f.write(f'{runner.iter}\t{sample.img_path}\n')
