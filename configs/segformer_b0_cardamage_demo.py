# A CPU-sized SegFormer-b0 run on the bundled 70-photo sample
# (data/demo/car-damage-detector, converted by `make demo-data` into
# data/car_damage_demo): 256 crops, 300 iterations, no pretrained download.
# Trained from scratch on 62 photos, so: a 10x higher lr than the ImageNet
# fine-tuning recipe, and damage-weighted CE + Dice against the imbalance
# (plain CE at lr 6e-5 predicted only background after 300 iterations).
# The sample has no labelled test split: test uses the val split.
_base_ = ['./segformer_b0_cardamage.py']
data_root = 'data/car_damage_demo'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(
        type='RandomResize',
        scale=(512, 512),
        ratio_range=(0.5, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
max_iters = 300
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
    decode_head=dict(loss_decode=[
        dict(type='WeightedCrossEntropyLoss', class_weight=[1.0, 3.0],
             loss_weight=1.0, loss_name='loss_ce'),
        dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
    ]))
optim_wrapper = dict(optimizer=dict(lr=0.0006))
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val',
                         seg_map_path='ann_dir/val')))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, save_best=None))
