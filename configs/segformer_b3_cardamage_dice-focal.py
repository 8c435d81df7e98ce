# SegFormer-b3 with Dice + softmax focal loss (gamma 2).
# Same as `tools/train.py configs/segformer_b3_cardamage.py --loss dice-focal`.
_base_ = ['./segformer_b3_cardamage.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
        dict(type='SoftmaxFocalLoss', gamma=2.0, loss_weight=1.0,
             loss_name='loss_focal'),
    ]))
