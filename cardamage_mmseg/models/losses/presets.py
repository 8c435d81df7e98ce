"""Named loss combinations for ``loss_decode``; ``tools/train.py --loss``
applies one to every head of any (non-Mask2Former) config.

The study's best was CE + mIoU (Lovasz-softmax: ``LovaszSoftmaxLoss``).
"""
import copy
from typing import Dict, List

CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
          avg_non_ignore=True, loss_name='loss_ce')
DICE = dict(type='MaskedDiceLoss', loss_weight=1.0, loss_name='loss_dice')
FOCAL = dict(type='SoftmaxFocalLoss', gamma=2.0, loss_weight=1.0,
             loss_name='loss_focal')
IOU = dict(type='SoftIoULoss', loss_weight=1.0, loss_name='loss_iou')
LOVASZ = dict(type='LovaszSoftmaxLoss', classes='present', loss_weight=1.0,
              loss_name='loss_lovasz')

LOSS_PRESETS: Dict[str, List[dict]] = {
    'ce': [CE],
    'ce-dice': [CE, DICE],
    'dice-focal': [DICE, FOCAL],
    'ce-lovasz': [CE, LOVASZ],
    'ce-dice-iou': [CE, DICE, IOU],
    'focal': [FOCAL],
}


def loss_preset(name: str, scale: float = 1.0) -> List[dict]:
    """A fresh copy of preset ``name``, every ``loss_weight`` times ``scale``.
    """
    if name not in LOSS_PRESETS:
        raise ValueError(f'unknown loss preset {name!r}; choose from '
                         f'{sorted(LOSS_PRESETS)}')
    losses = copy.deepcopy(LOSS_PRESETS[name])
    for loss in losses:
        loss['loss_weight'] = loss['loss_weight'] * scale
    return losses
