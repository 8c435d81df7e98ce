from .amp import AMP_CHOICES, AMP_DTYPES, resolve_amp
from .hooks import RNGStateHook, SampleTraceHook
from .loops import AmpTestLoop, AmpValLoop
from .speed_hooks import (ChannelsLastHook, CompileNetworkHook,
                          compile_network, to_channels_last)
from .wrappers import FrozenModelWrapper

__all__ = ['AMP_CHOICES', 'AMP_DTYPES', 'AmpTestLoop', 'AmpValLoop',
           'ChannelsLastHook', 'CompileNetworkHook', 'FrozenModelWrapper',
           'RNGStateHook', 'SampleTraceHook', 'compile_network', 'resolve_amp',
           'to_channels_last']
