# mmseg's runtime, plus: the project's modules registered (and checkpoints
# loaded safely), overlays at half opacity, a fixed seed, and torch's RNG
# (dropout, drop-path) continued across --resume.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(
    imports=['cardamage_mmseg.register'], allow_failed_imports=False)
visualizer = dict(alpha=0.5)
randomness = dict(seed=0)
custom_hooks = [dict(type='RNGStateHook')]
