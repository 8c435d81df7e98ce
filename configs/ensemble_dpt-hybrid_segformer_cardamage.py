# The study's best ensemble as the study built it: pixel-wise union (OR) of
# DPT-hybrid (HF, through HFSegmentor) and SegFormer-b3 (0.7240 test mIoU).
# ensemble_dpt_segformer_cardamage.py is the same rule with mmseg's ViT DPT.
_base_ = ['./ensemble_dpt_segformer_cardamage.py']
model = dict(members=[
    dict(
        config='dpt-hybrid_cardamage.py',
        checkpoint='work_dirs/dpt-hybrid_cardamage/iter_20000.pth'),
    dict(
        config='segformer_b3_cardamage.py',
        checkpoint='work_dirs/segformer_b3_cardamage/iter_20000.pth'),
])
