# DeepLabV3-MobileViT-S (Mehta & Rastegari 2022; the study's 6.4M model):
# mmpretrain's MobileViT-small, last stage dilated (output stride 16) and
# without its 640-channel expansion, under an ASPP head with a 1x1 projection.
norm_cfg = dict(type='SyncBN', requires_grad=True)
# MobileViT's ImageNet weights expect [0, 1] inputs in BGR order (mmpretrain)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255)
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/mobilevit/mobilevit-small_3rdparty_in1k_20221018-cb4f741c.pth'  # noqa
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='DilatedMobileViT',
        arch='small',
        output_stride=16,
        expand_output=False,
        out_indices=(4, ),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    decode_head=dict(
        type='LightASPPHead',
        in_channels=160,
        in_index=0,
        channels=256,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
