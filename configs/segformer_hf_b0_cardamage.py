# SegFormer-b0 with HuggingFace's decode head (256 channels, as HF's b0);
# see segformer_hf_b3_cardamage.py. HF MiT init: nvidia/mit-b0.
_base_ = ['./segformer_b0_cardamage.py']
model = dict(
    backbone=dict(norm_cfg=dict(type='LN', eps=1e-5)),
    decode_head=dict(type='SegformerHFHead', channels=256))
