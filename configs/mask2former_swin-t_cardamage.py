# Mask2Former + Swin-T on car damage, 512x512 (the study gave no figure).
# Needs mmdet 3.3.0 (its pixel decoder, matcher and losses). On the CPU,
# mmcv's multi-scale deformable attention falls back to PyTorch.
_base_ = [
    './_base_/models/mask2former_swin-t.py',
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_20k.py'
]
custom_imports = dict(
    imports=['cardamage_mmseg.register', 'mmdet.models'],
    allow_failed_imports=False)
# optimizer and lr multipliers as mmseg's Mask2Former Swin-T config
backbone_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
backbone_embed_multi = dict(lr_mult=0.1, decay_mult=0.0)
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
custom_keys = {
    'backbone': dict(lr_mult=0.1, decay_mult=1.0),
    'backbone.patch_embed.norm': backbone_norm_multi,
    'backbone.norm': backbone_norm_multi,
    'absolute_pos_embed': backbone_embed_multi,
    'relative_position_bias_table': backbone_embed_multi,
    'query_embed': embed_multi,
    'query_feat': embed_multi,
    'level_embed': embed_multi
}
custom_keys.update({
    f'backbone.stages.{stage_id}.blocks.{block_id}.norm': backbone_norm_multi
    for stage_id, num_blocks in enumerate([2, 2, 6, 2])
    for block_id in range(num_blocks)
})
custom_keys.update({
    f'backbone.stages.{stage_id}.downsample.norm': backbone_norm_multi
    for stage_id in range(3)
})
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=0.0001,
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999),
        fused=True),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=20000,
         by_epoch=False)
]
