# SegFormer-b3 with Dice + softmax focal loss (gamma 2).
# Same as
#   tools/train.py configs/segformer_b3_cardamage.py --loss dice-focal
# (both read configs/_base_/losses/dice-focal.py).
_base_ = ['./segformer_b3_cardamage.py', './_base_/losses/dice-focal.py']
model = dict(decode_head=dict(loss_decode={{_base_.loss_decode}}))
