# Softmax focal loss alone (gamma 2).
loss_decode = [
    dict(type='SoftmaxFocalLoss', gamma=2.0, loss_weight=1.0,
         loss_name='loss_focal'),
]
