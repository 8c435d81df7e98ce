"""Mixed-precision names: the dtypes autocast accepts, and which one a
request resolves to on this machine."""
from typing import Optional

import torch

from ..utils.config import ConfigError

AMP_CHOICES = ('auto', 'bf16', 'fp16')
AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
              'fp16': torch.float16, 'float16': torch.float16}


def resolve_amp(amp: Optional[str], training: bool) -> Optional[str]:
    """'auto' -> 'bf16' where the device supports it, else 'fp16' (CUDA).

    Raises :class:`ConfigError` where mixed precision cannot run:
    mmengine's ``AmpOptimWrapper`` needs an accelerator, and CPU autocast
    is bf16 only.
    """
    if amp is None:
        return None
    if amp not in AMP_CHOICES:
        raise ConfigError(f'--amp {amp!r}: choose from {AMP_CHOICES}')
    cuda = torch.cuda.is_available()
    if training and not cuda:
        raise ConfigError('--amp training needs a GPU (mmengine\'s '
                          'AmpOptimWrapper); on the CPU train in fp32')
    if amp == 'auto':
        return 'bf16' if (not cuda or torch.cuda.is_bf16_supported()) \
            else 'fp16'
    if amp == 'fp16' and not cuda:
        raise ConfigError('--amp fp16 needs a GPU; CPU autocast is bf16 '
                          'only')
    if amp == 'bf16' and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError('--amp bf16: this GPU has no bfloat16; use '
                          '--amp fp16')
    return amp
