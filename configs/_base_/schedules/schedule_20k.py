# 20k iterations, validation and checkpoint every 2k (keeps the best mIoU).
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=20000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=2000,
        max_keep_ckpts=3,
        save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# The learning rates of these schedules are for a total batch of 4 images
# (1 GPU x 4). With more GPUs or a larger batch, scale lr linearly:
# `--cfg-options auto_scale_lr.enable=True` (mmengine multiplies lr by
# total batch / base_batch_size); keep the warm-up, and prefer bf16 (--amp)
# to a smaller batch when memory is short.
auto_scale_lr = dict(enable=False, base_batch_size=4)
