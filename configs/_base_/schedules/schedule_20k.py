# mmseg's 20k-iteration SGD schedule (validation and checkpoint every 2k),
# keeping the best mIoU and the last 3 checkpoints.
_base_ = ['mmseg::_base_/schedules/schedule_20k.py']
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3, save_best='mIoU'))
# The learning rates of these schedules are for a total batch of 4 images
# (1 GPU x 4). With more GPUs or a larger batch, scale lr linearly:
# `--cfg-options auto_scale_lr.enable=True` (mmengine multiplies lr by
# total batch / base_batch_size); keep the warm-up, and prefer bf16 (--amp)
# to a smaller batch when memory is short.
auto_scale_lr = dict(enable=False, base_batch_size=4)
