# Runtime shared by every cardamage config: registers the project's modules
# (datasets, transforms, losses, segmentors, safe checkpoint loading).
custom_imports = dict(imports=['cardamage_mmseg'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer',
    vis_backends=vis_backends,
    name='visualizer',
    alpha=0.5)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
tta_model = dict(type='SegTTAModel')
# torch's RNG (dropout, drop-path) continues across --resume
custom_hooks = [dict(type='RNGStateHook')]
