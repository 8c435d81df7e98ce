# 20k iterations with AdamW, linear warm-up (1500) and poly decay: the
# recipe of mmseg's transformer configs (SegFormer, Swin, DPT).
_base_ = ['./schedule_20k.py']
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    # fused: one kernel for the whole update (CPU and CUDA, torch >= 2.4)
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01,
        fused=True),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=20000,
         by_epoch=False)
]
