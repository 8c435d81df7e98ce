# DPT-hybrid (BiT ResNet-50 stem + ViT-B/16, the study's second-best single
# model: 0.7052 test mIoU) run from HuggingFace transformers inside mmseg
# (HFSegmentor; needs the hf extra: pip install -e ".[hf]"). OpenMMLab has
# no hybrid DPT; dpt_vit-b16_cardamage.py is mmseg's pure-ViT DPT.
# Pretrained: Intel/dpt-hybrid-midas (its DPT backbone and neck; the
# segmentation head starts random), downloaded by huggingface_hub or read
# from the HF cache; offline: --cfg-options model.hf_model.init_cfg=None
_base_ = [
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_adamw_20k.py'
]
crop_size = (512, 512)
# the image processor of Intel/dpt-hybrid-midas: (x / 255 - 0.5) / 0.5
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
# DPTConfig fields of the hybrid (as transformers' DPT-hybrid conversion
# sets them); position embeddings are interpolated to the 512 input's grid
hf_config = dict(
    model_type='dpt',
    is_hybrid=True,
    image_size=384,
    patch_size=16,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    backbone_out_indices=[2, 5, 8, 11],
    neck_hidden_sizes=[256, 512, 768, 768],
    reassemble_factors=[1, 1, 1, 0.5],
    backbone_featmap_shape=[1, 1024, 24, 24],
    fusion_hidden_size=256,
    readout_type='project',
    use_auxiliary_head=False)
model = dict(
    type='HFSegmentor',
    data_preprocessor=data_preprocessor,
    hf_model=dict(
        config=hf_config,
        init_cfg=dict(
            type='HFPretrained',
            checkpoint='Intel/dpt-hybrid-midas',
            local_files_only=False)),
    decode_head=dict(
        num_classes=2,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# AdamW + warm-up + poly (schedule base); no decay on embeddings/norms
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'position_embeddings': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
