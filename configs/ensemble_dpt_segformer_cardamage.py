# The study's best ensemble: pixel-wise union (OR) of DPT and SegFormer-b3
# (0.7240 test mIoU, damage IoU 0.504). Train both members first; point the
# checkpoints elsewhere with
#   --cfg-options model.members.0.checkpoint=... model.members.1.checkpoint=...
# Evaluate: python tools/test.py configs/ensemble_dpt_segformer_cardamage.py
#       or: python tools/ensemble.py configs/ensemble_dpt_segformer_cardamage.py
_base_ = [
    './_base_/datasets/car_damage.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_20k.py'
]
# member configs: relative to this folder (then the working directory);
# checkpoints: relative to the working directory (then this folder)
model = dict(
    type='EnsembleSegmentor',
    members=[
        dict(
            config='dpt_vit-b16_cardamage.py',
            checkpoint='work_dirs/dpt_vit-b16_cardamage/iter_20000.pth'),
        dict(
            config='segformer_b3_cardamage.py',
            checkpoint='work_dirs/segformer_b3_cardamage/iter_20000.pth'),
    ],
    fusion='union')
