"""A guard transform placed right after ``LoadAnnotations``.

Why this is ours: mmseg resizes image and mask independently, so a mask whose
size differs from its image trains silently on misaligned labels, and a mask
with values >= num_classes either crashes inside the loss on the GPU or is
counted wrongly by ``IoUMetric``. This transform turns both, and colour (RGB)
masks, into an error that names the file.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...core.image import orientation_problem
from ...core.masks import out_of_range_values


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Validate one loaded image/mask pair.

    Contract: ``gt_seg_map`` is 2-D, has the image's height and width as
    loaded (``ori_shape``), every value is in ``[0, num_classes)`` or
    equals ``ignore_index``, and the image file carries no EXIF orientation
    (mmcv turns such a photo as it loads it, the mask is not turned: a
    180-degree tag keeps the size and would train on misaligned pairs).

    Args:
        num_classes (int, optional): Used when the data info does not carry
            ``num_classes`` (``CarDamageDataset`` sets it). If neither is
            given, values are not checked.
        ignore_index (int): Label that is ignored. Defaults to 255.
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        img_path = results.get('img_path', '<array>')
        if img is None:
            raise ValueError(f'{img_path}: image could not be read')
        seg = results.get('gt_seg_map')
        if seg is None:
            return results
        seg_path = results.get('seg_map_path', '<array>')
        if isinstance(img_path, str) and img_path != '<array>':
            problem = orientation_problem(img_path, seg_path)
            if problem:
                raise ValueError(problem)
        if seg.ndim != 2:
            raise ValueError(
                f'{seg_path}: mask has shape {seg.shape}; expected a '
                f'single-channel PNG of class ids (a colour mask must be '
                f'converted to ids first)')
        # compare with the size as loaded: in test pipelines the image may
        # already be resized when the mask is loaded (mmseg's convention)
        ori_h, ori_w = results.get('ori_shape', img.shape[:2])[:2]
        if seg.shape != (ori_h, ori_w):
            raise ValueError(
                f'{seg_path}: mask is {seg.shape[1]}x{seg.shape[0]} (WxH) '
                f'but its image {img_path} is {ori_w}x{ori_h}')
        num_classes = results.get('num_classes', self.num_classes)
        ignore_index = results.get('ignore_index', self.ignore_index)
        if num_classes is not None:
            bad = out_of_range_values(np.unique(seg), num_classes,
                                      ignore_index)
            if bad.size:
                raise ValueError(
                    f'{seg_path}: mask values {bad.tolist()[:10]} are outside '
                    f'the class range 0..{num_classes - 1} (ignore index '
                    f'{ignore_index})')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
