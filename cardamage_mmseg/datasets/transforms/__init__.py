from .check_sample import CheckSegSample

__all__ = ['CheckSegSample']
