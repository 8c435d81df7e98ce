# The study's weighted hard vote of DPT, UperNet Swin-T and SegFormer-b3
# with weights 0.6 / 0.3 / 0.1 (0.7054 test mIoU).
_base_ = ['./ensemble_dpt_segformer_cardamage.py']
model = dict(
    members=[
        dict(
            config='dpt_vit-b16_cardamage.py',
            checkpoint='work_dirs/dpt_vit-b16_cardamage/iter_20000.pth',
            weight=0.6),
        dict(
            config='upernet_swin-t_cardamage.py',
            checkpoint='work_dirs/upernet_swin-t_cardamage/iter_20000.pth',
            weight=0.3),
        dict(
            config='segformer_b3_cardamage.py',
            checkpoint='work_dirs/segformer_b3_cardamage/iter_20000.pth',
            weight=0.1),
    ],
    fusion='weighted_vote')
