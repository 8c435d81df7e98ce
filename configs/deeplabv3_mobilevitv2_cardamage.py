# DeepLabV3 + MobileViTv2-1.0 (study: 0.5584 test mIoU). MobileViTv2 does
# not exist in OpenMMLab: timm's maintained `mobilevitv2_100` is used through
# mmseg's TIMMBackbone, at output stride 16 as Apple's DeepLabV3 variant,
# under the same ASPP head as DeepLabV3-MobileViT-S widened to 512 channels
# (about 13M parameters, as the study's model). Needs timm.
_base_ = ['./deeplabv3_mobilevit-s_cardamage.py']
# timm, not mmpretrain (the base's MobileViT-S needs mmpretrain)
custom_imports = dict(
    imports=['cardamage_mmseg.register'], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],  # timm's ImageNet statistics, RGB
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='TIMMBackbone',
        model_name='mobilevitv2_100',
        features_only=True,
        pretrained=True,  # timm's ImageNet weights (download)
        output_stride=16,
        out_indices=(4, )),
    decode_head=dict(in_channels=512, channels=512))
