# Cross-entropy + Dice (ignore-aware MaskedDiceLoss).
loss_decode = [
    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
         avg_non_ignore=True, loss_name='loss_ce'),
    dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
]
