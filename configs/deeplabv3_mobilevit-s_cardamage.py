# DeepLabV3 + MobileViT-S on car damage, 512x512 (study: 0.604 test mIoU).
_base_ = [
    './_base_/models/deeplabv3_mobilevit-s.py',
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_adamw_20k.py'
]
custom_imports = dict(
    imports=['cardamage_mmseg.register', 'mmpretrain.models'],
    allow_failed_imports=False)
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
# AdamW + warm-up + poly (transformer backbone)
# AdamW + warm-up + poly (schedule base) at a CNN-friendly higher lr
optim_wrapper = dict(optimizer=dict(lr=0.0002))
