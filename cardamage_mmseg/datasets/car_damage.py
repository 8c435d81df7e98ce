"""Car-damage segmentation datasets in mmseg's ``img_dir``/``ann_dir`` layout.

Layout (``data_root`` overridable)::

    data/car_damage/
        img_dir/{train,val,test}/*.jpg
        ann_dir/{train,val,test}/*.png   # uint8 class ids, 255 = ignore

Why this is ours: on top of :class:`BaseSegDataset` it fails early and by
name on data that would otherwise crash deep inside a transform or, worse,
train silently on wrong masks: a missing folder (with the command that
prepares it), an image without mask, masks that paint damage with the
ignore index 255, and (per sample, through
:class:`CheckSegSample`) size mismatches, RGB masks, out-of-range values and
unreadable files.
"""
import os
import os.path as osp
from typing import List

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

from ..core.masks import holds_damage_ids
from ..core.palette import (AIHUB_CLASSES, AIHUB_PALETTE, BINARY_CLASSES,
                            BINARY_PALETTE)

PREPARE_HINT = ('Prepare it with `python tools/dataset_converters/'
                'via_to_mmseg.py` (VIA polygons), `python tools/'
                'dataset_converters/aihub_to_mmseg.py` (AI Hub JSON) or '
                '`make demo-data` for the bundled sample, or point '
                '`data_root` at your converted data.')

BINARY_METAINFO = dict(classes=BINARY_CLASSES, palette=BINARY_PALETTE)
AIHUB_METAINFO = dict(classes=AIHUB_CLASSES, palette=AIHUB_PALETTE)


class DatasetError(RuntimeError):
    """The data set on disk is not usable; the message names the path."""


@DATASETS.register_module()
class CarDamageDataset(BaseSegDataset):
    """Binary car-damage data set: ``background`` (0) and ``damage`` (1).

    Args:
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask file suffix. Defaults to '.png'.
        reduce_zero_label (bool): Defaults to False (0 is background).
        **kwargs: Passed to :class:`BaseSegDataset`.
    """
    METAINFO = BINARY_METAINFO

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the folders, then check that every image has its mask.

        Each data info also carries ``num_classes`` and ``ignore_index`` so
        that :class:`CheckSegSample` can validate mask values.
        """
        img_dir = self.data_prefix.get('img_path', '')
        ann_dir = self.data_prefix.get('seg_map_path', None)
        if not (self.ann_file and osp.isfile(self.ann_file)):
            for folder, what in ((img_dir, 'image'), (ann_dir, 'mask')):
                if folder and not osp.isdir(folder):
                    raise DatasetError(
                        f'{self.__class__.__name__}: {what} folder {folder} '
                        f'does not exist. {PREPARE_HINT}')
        # hidden files (e.g. ".tmp-*" of an interrupted conversion) are not
        # samples
        data_list = [d for d in super().load_data_list() + self._other_case()
                     if not osp.basename(d['img_path']).startswith('.')]
        data_list.sort(key=lambda d: d['img_path'])
        if not data_list:
            raise DatasetError(
                f'{self.__class__.__name__}: no "*{self.img_suffix}" images '
                f'found in {img_dir}. {PREPARE_HINT}')
        if ann_dir is not None:
            missing = [d['img_path'] for d in data_list
                       if not osp.isfile(d['seg_map_path'])]
            if missing:
                shown = '\n  '.join(missing[:10])
                more = (f'\n  ... and {len(missing) - 10} more'
                        if len(missing) > 10 else '')
                raise DatasetError(
                    f'{len(missing)} image(s) in {img_dir} have no mask '
                    f'"<name>{self.seg_map_suffix}" in {ann_dir}:\n  '
                    f'{shown}{more}\nRun tools/dataset_converters/'
                    f'check_dataset.py for a full report.')
        num_classes = len(self._metainfo['classes'])
        if ann_dir is not None:
            self._check_not_ignore_coded(data_list, num_classes)
        for info in data_list:
            info['num_classes'] = num_classes
            info['ignore_index'] = self.ignore_index
        return data_list

    def _other_case(self) -> List[dict]:
        """Images whose suffix differs from ``img_suffix`` only in case
        (``UPPER.JPG``), which mmseg's case-sensitive scan drops silently
        (the checker counts them, as cameras write them)."""
        img_dir = self.data_prefix.get('img_path', '')
        ann_dir = self.data_prefix.get('seg_map_path', None)
        if (self.ann_file and osp.isfile(self.ann_file)) or \
                not osp.isdir(img_dir):
            return []
        suffix = self.img_suffix
        extra = []
        for root, _, names in os.walk(img_dir):
            for name in names:
                if name.lower().endswith(suffix.lower()) and \
                        not name.endswith(suffix):
                    path = osp.join(root, name)
                    rel = osp.relpath(path, img_dir)[:-len(suffix)]
                    info = dict(img_path=path, label_map=self.label_map,
                                reduce_zero_label=self.reduce_zero_label,
                                seg_fields=[])
                    if ann_dir is not None:
                        info['seg_map_path'] = osp.join(
                            ann_dir, rel + self.seg_map_suffix)
                    extra.append(info)
        return extra

    def _check_not_ignore_coded(self, data_list: List[dict],
                                num_classes: int, samples: int = 16) -> None:
        """Refuse masks that mark damage with the ignore index.

        Binary masks saved as 0/255 PNGs pass every per-sample check (255 is
        the ignore index), and the model then trains on background alone.
        Up to ``samples`` masks spread over the split are read; if each of
        them holds ignore pixels and none holds a class id 1..C-1, that is
        this mistake, not data.
        """
        step = max(1, len(data_list) // samples)
        paths = [d['seg_map_path'] for d in data_list[::step][:samples]]
        for path in paths:
            try:
                with Image.open(path) as mask:
                    values = np.unique(np.asarray(mask))
            except Exception:
                return  # unreadable: CheckSegSample names it per sample
            if (not (values == self.ignore_index).any()
                    or holds_damage_ids(values, num_classes)):
                return
        raise DatasetError(
            f'{self.__class__.__name__}: the {len(paths)} masks read in '
            f'{osp.dirname(paths[0])} hold only 0 and {self.ignore_index} '
            f'(the ignore index, never trained on): damage seems to be '
            f'painted {self.ignore_index}. Write class ids instead (damage '
            f'= 1, e.g. np.where(mask == {self.ignore_index}, 1, 0)), or '
            f'convert polygons with tools/dataset_converters/. '
            f'tools/dataset_converters/check_dataset.py checks every mask.')

    def prepare_data(self, idx: int):
        """Run the pipeline; any failure is re-raised naming the files."""
        try:
            return super().prepare_data(idx)
        except DatasetError:
            raise
        except Exception as err:
            info = self.get_data_info(idx)
            files = info['img_path']
            if info.get('seg_map_path'):
                files += f' / {info["seg_map_path"]}'
            raise DatasetError(
                f'Sample {idx} ({files}) failed in the data pipeline: '
                f'{type(err).__name__}: {err}') from err


@DATASETS.register_module()
class AIHubCarDamageDataset(CarDamageDataset):
    """AI Hub "Vehicle Damage Image" types: background, scratched, separated,
    crushed, breakage (ids 0-4). Same layout and checks as
    :class:`CarDamageDataset`; select it with ``--label-set aihub`` in the
    tools or ``dataset.type='AIHubCarDamageDataset'`` and 5-class heads.
    """
    METAINFO = AIHUB_METAINFO
