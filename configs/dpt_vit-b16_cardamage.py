# DPT head on ViT-B/16 (mmseg's DPT) on car damage, 512x512.
# The study used DPT-hybrid (ResNet-50 + ViT-B/16 embedding; 0.7052 test
# mIoU); OpenMMLab has no hybrid embedding, so this is mmseg's pure ViT DPT.
# Pretrained ViT-B/16: as mmseg's DPT README says, convert timm's weights
#   python tools/model_converters/vit2mmseg.py \
#     https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_base_p16_224-80ecf9dd.pth \
#     pretrain/vit-b16_p16_224-80ecf9dd.pth
# (mmseg's tools) or train from scratch with --cfg-options model.pretrained=None
_base_ = [
    'mmseg::_base_/models/dpt_vit-b16.py',
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_adamw_20k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=2))
# AdamW + warm-up + poly (schedule base); no decay on embeddings/norms
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
