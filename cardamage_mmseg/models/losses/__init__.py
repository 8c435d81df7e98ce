from .dice_loss import MaskedDiceLoss
from .distill_losses import (ChannelWiseDistillLoss, FeatureMimicLoss,
                             PixelKLDistillLoss)
from .focal_loss import SoftmaxFocalLoss
from .iou_loss import SoftIoULoss

__all__ = [
    'ChannelWiseDistillLoss', 'FeatureMimicLoss', 'MaskedDiceLoss',
    'PixelKLDistillLoss', 'SoftIoULoss', 'SoftmaxFocalLoss'
]
