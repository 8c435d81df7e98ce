# SegFormer-b3 with cross-entropy + Dice (ignore-aware MaskedDiceLoss).
# Same as `tools/train.py configs/segformer_b3_cardamage.py --loss ce-dice`.
_base_ = ['./segformer_b3_cardamage.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
             avg_non_ignore=True, loss_name='loss_ce'),
        dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
    ]))
