from .car_damage import (AIHUB_METAINFO, BINARY_METAINFO,
                         AIHubCarDamageDataset, CarDamageDataset,
                         DatasetError)
from .checker import check_dataset, check_split, format_reports
from .transforms import CheckSegSample

__all__ = [
    'AIHUB_METAINFO', 'BINARY_METAINFO', 'AIHubCarDamageDataset',
    'CarDamageDataset', 'CheckSegSample', 'DatasetError', 'check_dataset',
    'check_split', 'format_reports'
]
