from .dice_loss import MaskedDiceLoss
from .distill_losses import (ChannelWiseDistillLoss, FeatureMimicLoss,
                             PixelKLDistillLoss)
from .focal_loss import SoftmaxFocalLoss
from .iou_loss import SoftIoULoss
from .lovasz_loss import LovaszSoftmaxLoss
from .weighted_ce_loss import WeightedCrossEntropyLoss

__all__ = [
    'ChannelWiseDistillLoss', 'FeatureMimicLoss', 'LovaszSoftmaxLoss',
    'MaskedDiceLoss',
    'PixelKLDistillLoss', 'SoftIoULoss', 'SoftmaxFocalLoss',
    'WeightedCrossEntropyLoss'
]
