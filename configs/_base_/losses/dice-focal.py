# Dice + softmax focal loss (gamma 2).
loss_decode = [
    dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
    dict(type='SoftmaxFocalLoss', gamma=2.0, loss_weight=1.0,
         loss_name='loss_focal'),
]
