# SegFormer-b3 with HuggingFace's decode head (SegformerHFHead: a Linear per
# stage, 768 channels): the study's 47M-parameter model, and the layout
# tools/model_converters/hf2mmseg.py converts HF checkpoints into and
# mmseg2hf.py out of. HF's LayerNorms compute with eps=1e-5.
# Pretrained MiT from a HF cache instead of OpenMMLab's server:
#   --cfg-options model.backbone.init_cfg.type=HFPretrained \
#                 model.backbone.init_cfg.checkpoint=nvidia/mit-b3
_base_ = ['./segformer_b3_cardamage.py']
model = dict(
    backbone=dict(norm_cfg=dict(type='LN', eps=1e-5)),
    decode_head=dict(type='SegformerHFHead', channels=768))
