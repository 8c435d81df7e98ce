from .dice_loss import MaskedDiceLoss
from .focal_loss import SoftmaxFocalLoss
from .iou_loss import SoftIoULoss

__all__ = ['MaskedDiceLoss', 'SoftIoULoss', 'SoftmaxFocalLoss']
