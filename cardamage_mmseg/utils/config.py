"""Config helpers shared by the tools."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

LABEL_SETS = {
    'binary': ('CarDamageDataset', 2),
    'aihub': ('AIHubCarDamageDataset', 5),
}
_DATASET_TYPES = {t for t, _ in LABEL_SETS.values()}


def _set_num_classes(head, num_classes: int) -> None:
    if head is None:
        return
    heads = head if isinstance(head, list) else [head]
    for h in heads:
        if 'num_classes' in h:
            h['num_classes'] = num_classes
        # Mask2Former: one weight per class plus the "no object" weight
        cls_loss = h.get('loss_cls')
        if isinstance(cls_loss, dict) and isinstance(
                cls_loss.get('class_weight'), list):
            cls_loss['class_weight'] = [1.0] * num_classes + [
                cls_loss['class_weight'][-1]]


def apply_label_set(cfg: Config, label_set: str) -> Config:
    """Switch a config between the binary and the AI Hub 5-class labels.

    Sets the dataset type of every dataloader and ``num_classes`` of every
    head (decode, auxiliary, Mask2Former's class weights). One flag instead
    of a new file per model.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f'unknown label set {label_set!r}; choose from '
                         f'{sorted(LABEL_SETS)}')
    dataset_type, num_classes = LABEL_SETS[label_set]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # RepeatDataset & co.
            dataset = dataset['dataset']
        if dataset.get('type') in _DATASET_TYPES:
            dataset['type'] = dataset_type
    model = cfg.model
    if model.get('type') == 'SegTTAModel':
        model = model['module']
    _set_num_classes(model.get('decode_head'), num_classes)
    _set_num_classes(model.get('auxiliary_head'), num_classes)
    return cfg


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     label_set: Optional[str] = None,
                     work_dir: Optional[str] = None,
                     launcher: str = 'none') -> Config:
    """What every tool does first: load, override, pick the label set and
    the work dir (CLI > config > ``work_dirs/<config name>``)."""
    if not osp.isfile(config):
        raise SystemExit(f'error: config file {config} not found')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if label_set:
        apply_label_set(cfg, label_set)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg
