"""Speed switches of the tools: the ``--amp``, ``--compile`` and
``--channels-last`` flags and the config rewriting they ask for, so that
train/test/infer agree."""
from typing import Optional

import torch
from mmengine.config import Config

from ..engine.amp import resolve_amp
from ..utils.config import ConfigError
from .flags import add_speed_args

__all__ = ['add_speed_args', 'apply_speed_settings']


def _add_hook(cfg: Config, hook: dict) -> None:
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == hook['type'] for h in hooks):
        hooks.append(hook)
    cfg.custom_hooks = hooks


def apply_speed_settings(cfg: Config, amp: Optional[str] = None,
                         compile: bool = False, channels_last: bool = False,
                         training: bool = True) -> Config:
    """Switch a config to the fast paths.

    - ``amp``: training uses ``AmpOptimWrapper`` in that dtype (bf16 needs
      no loss scaling, but mmengine's wrapper always keeps its dynamic
      scaler: a multiply and an inf check per step, exact in bf16's
      range); validation/test run in :class:`AmpValLoop`/
      :class:`AmpTestLoop`.
    - ``compile`` (or a ``compile`` key in the config): the network is
      compiled at start (``CompileNetworkHook``) instead of mmengine's
      ``train_step`` compilation.
    - ``channels_last``: ``ChannelsLastHook``.
    - on CUDA, training batches come from pinned memory unless the config
      says otherwise (always safe, so not a switch).

    Raises :class:`ConfigError` for a switch this machine or config cannot
    run.
    """
    amp = resolve_amp(amp, training)
    if amp:
        if training:
            wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
            if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
                raise ConfigError(f'--amp needs optim_wrapper.type '
                                  f'OptimWrapper, the config has {wrapper}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16' if amp == 'bf16' \
                else 'float16'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
            if cfg.get('val_cfg') is not None:
                cfg.val_cfg = dict(type='AmpValLoop', dtype=amp)
        if cfg.get('test_cfg') is not None:
            cfg.test_cfg = dict(type='AmpTestLoop', dtype=amp)
    # a ``compile`` key in the config means the same as --compile; it goes
    # to CompileNetworkHook, not to mmengine (see the hook for why)
    given = cfg.get('compile')
    cfg.compile = None
    if compile or given:
        options = dict(given) if isinstance(given, dict) else {}
        _add_hook(cfg, dict(type='CompileNetworkHook', compile_cfg=options))
    if channels_last:
        _add_hook(cfg, dict(type='ChannelsLastHook'))
    if training and torch.cuda.is_available() and cfg.get('train_dataloader'):
        cfg.train_dataloader.setdefault('pin_memory', True)
    return cfg
