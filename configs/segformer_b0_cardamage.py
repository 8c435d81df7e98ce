# SegFormer MiT-b0 on car damage (binary), 512x512, 20k iterations.
# Offline / from scratch: --cfg-options model.backbone.init_cfg=None
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_adamw_20k.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b0_20220624-7e0fe6dd.pth'  # noqa
model = dict(
    data_preprocessor=data_preprocessor,
    # MiT with fused scaled-dot-product attention: same weights and outputs
    # as mmseg's MixVisionTransformer, faster (set 'MixVisionTransformer'
    # to go back to the stock module)
    backbone=dict(
        type='MixVisionTransformerSDPA',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(num_classes=2))
# AdamW + warm-up + poly (schedule base), lr multipliers as mmseg's SegFormer
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
