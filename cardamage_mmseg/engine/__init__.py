from .hooks import RNGStateHook, SampleTraceHook
from .wrappers import FrozenModelWrapper

__all__ = ['FrozenModelWrapper', 'RNGStateHook', 'SampleTraceHook']
