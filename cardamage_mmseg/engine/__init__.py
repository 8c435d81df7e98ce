from .hooks import RNGStateHook, SampleTraceHook
from .loops import AmpTestLoop, AmpValLoop
from .speed_hooks import (ChannelsLastHook, CompileNetworkHook,
                          compile_network, to_channels_last)
from .wrappers import FrozenModelWrapper

__all__ = ['AmpTestLoop', 'AmpValLoop', 'ChannelsLastHook',
           'CompileNetworkHook', 'FrozenModelWrapper', 'RNGStateHook',
           'SampleTraceHook', 'compile_network', 'to_channels_last']
