# SegFormer-b3 with cross-entropy + Lovasz-softmax: the study's CE + mIoU
# loss (its best loss: 0.7080 test mIoU). LovaszSoftmaxLoss: mmseg's
# LovaszLoss maths, safe for empty batches and any dtype.
# Same as `tools/train.py configs/segformer_b3_cardamage.py --loss ce-lovasz`.
_base_ = ['./segformer_b3_cardamage.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
             avg_non_ignore=True, loss_name='loss_ce'),
        dict(type='LovaszSoftmaxLoss', classes='present', loss_weight=1.0,
             loss_name='loss_lovasz'),
    ]))
