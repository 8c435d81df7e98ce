"""Speed switches for the tools: mixed precision, torch.compile,
channels_last, pinned memory. One function, so train/test/infer agree."""
from typing import Optional

import torch
from mmengine.config import Config

AMP_CHOICES = ('auto', 'bf16', 'fp16')


def resolve_amp(amp: Optional[str], training: bool) -> Optional[str]:
    """'auto' -> 'bf16' where the device supports it, else 'fp16' (CUDA).

    Raises a clear error where mixed precision cannot run: mmengine's
    ``AmpOptimWrapper`` needs an accelerator, and CPU autocast is bf16 only.
    """
    if amp is None:
        return None
    if amp not in AMP_CHOICES:
        raise ValueError(f'--amp {amp!r}: choose from {AMP_CHOICES}')
    cuda = torch.cuda.is_available()
    if training and not cuda:
        raise ValueError('--amp training needs a GPU (mmengine\'s '
                         'AmpOptimWrapper); on the CPU train in fp32')
    if amp == 'auto':
        return 'bf16' if (not cuda or torch.cuda.is_bf16_supported()) \
            else 'fp16'
    if amp == 'fp16' and not cuda:
        raise ValueError('--amp fp16 needs a GPU; CPU autocast is bf16 only')
    if amp == 'bf16' and cuda and not torch.cuda.is_bf16_supported():
        raise ValueError('--amp bf16: this GPU has no bfloat16; use '
                         '--amp fp16')
    return amp


def add_speed_args(parser) -> None:
    """``--amp [bf16|fp16]``, ``--compile``, ``--channels-last``."""
    parser.add_argument(
        '--amp', nargs='?', const='auto', choices=AMP_CHOICES,
        help='mixed precision: bf16 where the device has it, else fp16; or '
        'name the dtype')
    parser.add_argument(
        '--compile', action='store_true',
        help='torch.compile the network (first steps pay the compilation)')
    parser.add_argument(
        '--channels-last', action='store_true',
        help='channels_last model and inputs (convolution-heavy models)')


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
    """
    amp = resolve_amp(amp, training)
    if amp:
        if training:
            wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
            if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
                raise ValueError(f'--amp needs optim_wrapper.type '
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
