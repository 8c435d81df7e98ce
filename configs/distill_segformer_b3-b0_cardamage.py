# Distil SegFormer-b3 (teacher) into SegFormer-b0 (student), as the study
# (T=2.0) but with the KL over the class axis. Train the teacher first:
#   python tools/train.py configs/segformer_b3_cardamage.py
# then: python tools/train.py configs/distill_segformer_b3-b0_cardamage.py
# and extract a plain b0 checkpoint for configs/segformer_b0_cardamage.py:
#   python tools/extract_student.py work_dirs/<this>/iter_20000.pth b0_kd.pth
# Other terms (see README): ChannelWiseDistillLoss, FeatureMimicLoss.
_base_ = ['./segformer_b0_cardamage.py']
model = dict(
    _delete_=True,
    type='DistillSegmentor',
    student={{_base_.model}},
    teacher=dict(
        config='configs/segformer_b3_cardamage.py',
        checkpoint='work_dirs/segformer_b3_cardamage/iter_20000.pth'),
    distill_losses=[
        dict(type='PixelKLDistillLoss', tau=2.0, loss_weight=1.0,
             loss_name='loss_kd'),
    ])
