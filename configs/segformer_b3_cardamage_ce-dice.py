# SegFormer-b3 with cross-entropy + Dice (ignore-aware MaskedDiceLoss).
# Same as
#   tools/train.py configs/segformer_b3_cardamage.py --loss ce-dice
# (both read configs/_base_/losses/ce-dice.py).
_base_ = ['./segformer_b3_cardamage.py', './_base_/losses/ce-dice.py']
model = dict(decode_head=dict(loss_decode={{_base_.loss_decode}}))
