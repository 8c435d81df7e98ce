# SegFormer-b3 with cross-entropy + Lovasz-softmax: the study's CE + mIoU
# loss (its best loss: 0.7080 test mIoU). LovaszSoftmaxLoss: mmseg's
# LovaszLoss maths, safe for empty batches and any dtype.
# Same as
#   tools/train.py configs/segformer_b3_cardamage.py --loss ce-lovasz
# (both read configs/_base_/losses/ce-lovasz.py).
_base_ = ['./segformer_b3_cardamage.py', './_base_/losses/ce-lovasz.py']
model = dict(decode_head=dict(loss_decode={{_base_.loss_decode}}))
