from .hooks import RNGStateHook, SampleTraceHook

__all__ = ['RNGStateHook', 'SampleTraceHook']
