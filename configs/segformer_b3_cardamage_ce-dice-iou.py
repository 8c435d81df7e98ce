# SegFormer-b3 with cross-entropy + Dice + soft IoU (Jaccard).
# Same as
#   tools/train.py configs/segformer_b3_cardamage.py --loss ce-dice-iou
# (both read configs/_base_/losses/ce-dice-iou.py).
_base_ = ['./segformer_b3_cardamage.py', './_base_/losses/ce-dice-iou.py']
model = dict(decode_head=dict(loss_decode={{_base_.loss_decode}}))
