# Cross-entropy + Lovasz-softmax: the study's CE + mIoU loss, its best
# (0.7080 test mIoU). LovaszSoftmaxLoss: mmseg's LovaszLoss maths, safe for
# empty batches and any dtype.
loss_decode = [
    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
         avg_non_ignore=True, loss_name='loss_ce'),
    dict(type='LovaszSoftmaxLoss', classes='present', loss_weight=1.0,
         loss_name='loss_lovasz'),
]
