# Cross-entropy over valid pixels (mmseg's, averaged over non-ignored).
loss_decode = [
    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
         avg_non_ignore=True, loss_name='loss_ce'),
]
