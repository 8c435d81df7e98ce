"""Config helpers shared by the tools."""
import importlib.util
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

LABEL_SETS = {
    'binary': ('CarDamageDataset', 2),
    'aihub': ('AIHubCarDamageDataset', 5),
}
_DATASET_TYPES = {t for t, _ in LABEL_SETS.values()}


def _set_num_classes(head: dict, num_classes: int) -> None:
    if 'num_classes' in head:
        head['num_classes'] = num_classes
    # Mask2Former: one weight per class plus the "no object" weight
    cls_loss = head.get('loss_cls')
    if isinstance(cls_loss, dict) and isinstance(
            cls_loss.get('class_weight'), list):
        cls_loss['class_weight'] = [1.0] * num_classes + [
            cls_loss['class_weight'][-1]]


def _innermost_dataset(dataset: dict) -> dict:
    """The dataset inside ``RepeatDataset`` & co."""
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def apply_label_set(cfg: Config, label_set: str) -> Config:
    """Switch a config between the binary and the AI Hub 5-class labels.

    Sets the dataset type of every dataloader and ``num_classes`` of every
    head (decode, auxiliary, Mask2Former's class weights; a distiller's
    student). One flag instead of a new file per model.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f'unknown label set {label_set!r}; choose from '
                         f'{sorted(LABEL_SETS)}')
    dataset_type, num_classes = LABEL_SETS[label_set]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = _innermost_dataset(loader['dataset'])
        if dataset.get('type') in _DATASET_TYPES:
            dataset['type'] = dataset_type
    for _, head in _model_heads(cfg.model):
        _set_num_classes(head, num_classes)
    return cfg


def apply_loss_preset(cfg: Config, name: str,
                      auxiliary_scale: float = 0.4) -> Config:
    """Set ``loss_decode`` of every head to a named combination.

    Auxiliary heads get the same terms with weights times
    ``auxiliary_scale`` (mmseg's 0.4 convention). Mask2Former's set-based
    losses are not ``loss_decode`` lists: refused with a clear message.
    """
    from cardamage_mmseg.models.losses.presets import loss_preset
    model = cfg.model
    if model.get('type') == 'SegTTAModel':
        model = model['module']
    head = model.get('decode_head', {})
    if 'loss_decode' not in head:
        raise SystemExit(
            f'error: --loss does not apply to {head.get("type", "this head")}'
            f' (Mask2Former uses its own set-based losses)')
    head['loss_decode'] = loss_preset(name)
    aux = model.get('auxiliary_head')
    for h in (aux if isinstance(aux, list) else [aux] if aux else []):
        h['loss_decode'] = loss_preset(name, auxiliary_scale)
    return cfg


#: optional package -> (what needs it, how to install it)
OPTIONAL_PACKAGES = {
    'mmdet': ('Mask2Former (mmdet.* modules)', 'pip install mmdet==3.3.0'),
    'timm': ('TIMMBackbone (MobileViTv2)', 'pip install timm==1.0.31'),
    'mmpretrain': ('mmpretrain backbones (MobileViT)',
                   'pip install mmpretrain==1.2.0'),
}


def required_packages(cfg: Config) -> List[str]:
    """Optional packages a config needs: from ``custom_imports`` and from
    registry scopes / backbone types used in the model."""
    needed = set()
    imports = cfg.get('custom_imports', {}).get('imports', [])
    for name in [imports] if isinstance(imports, str) else imports:
        root = name.split('.')[0]
        if root in OPTIONAL_PACKAGES:
            needed.add(root)
    text = cfg.pretty_text
    for scope in ('mmdet', 'mmpretrain'):
        if f"'{scope}." in text:
            needed.add(scope)
    if "'TIMMBackbone'" in text:
        needed.add('timm')
    return sorted(needed)


def check_dependencies(cfg: Config, config_path: str = '') -> None:
    """Fail before anything is built when an optional package is missing.
    """
    missing = [p for p in required_packages(cfg)
               if importlib.util.find_spec(p) is None]
    if missing:
        lines = [f'  {p}: needed by {OPTIONAL_PACKAGES[p][0]}; install with '
                 f'`{OPTIONAL_PACKAGES[p][1]}` (or `make install`)'
                 for p in missing]
        raise SystemExit(f'error: {config_path or "the config"} needs '
                         f'packages that are not installed:\n' +
                         '\n'.join(lines))


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, fail early on missing optional packages, import its
    ``custom_imports``, apply overrides. Every config the project loads
    (tools, ensemble members, teachers, baselines) goes through here."""
    cfg = Config.fromfile(config, import_custom_modules=False)
    check_dependencies(cfg, config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _model_heads(model: dict) -> List[tuple]:
    """(name, head dict) of a model config's heads, through test-time
    augmentation and a distiller's student."""
    if model.get('type') == 'SegTTAModel':
        model = model['module']
    if model.get('type') == 'DistillSegmentor' and isinstance(
            model.get('student'), dict):
        return [(f'student.{n}', h) for n, h in _model_heads(model.student)]
    heads = []
    for key in ('decode_head', 'auxiliary_head'):
        head = model.get(key)
        for i, h in enumerate(head if isinstance(head, list) else
                              [head] if head else []):
            name = f'{key}[{i}]' if isinstance(head, list) else key
            heads.append((name, h))
    return heads


def dataset_classes(dataset: dict) -> Optional[tuple]:
    """Class names of a dataset config: its ``metainfo``, else its
    registered type's ``METAINFO``; None if neither says."""
    dataset = _innermost_dataset(dataset)
    classes = dataset.get('metainfo', {}).get('classes')
    if classes:
        return tuple(classes)
    from mmseg.registry import DATASETS
    cls = DATASETS.get(dataset.get('type', ''))
    meta = getattr(cls, 'METAINFO', None) if cls else None
    return tuple(meta['classes']) if meta and 'classes' in meta else None


def check_num_classes(cfg: Config, config_path: str = '') -> None:
    """Fail before anything is built when a head's ``num_classes`` differs
    from its data's class count: labels beyond the head's range crash
    inside the loss (a device-side assert on a GPU), and a head with extra
    classes trains silently on a task it cannot be scored on."""
    heads = [(n, h) for n, h in _model_heads(cfg.model)
             if isinstance(h, dict) and 'num_classes' in h]
    if not heads:
        return  # ensembles check their members themselves
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        classes = dataset_classes(loader['dataset']) if loader else None
        if classes is None:
            continue
        for name, head in heads:
            if head['num_classes'] != len(classes):
                raise SystemExit(
                    f'error: {config_path or "the config"}: model '
                    f'{name}.num_classes={head["num_classes"]} but '
                    f'{key} has {len(classes)} classes {classes}. Pick the '
                    f'labels with --label-set {{binary,aihub}} (it sets '
                    f'both), or make them agree in the config.')


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     label_set: Optional[str] = None,
                     work_dir: Optional[str] = None,
                     launcher: str = 'none') -> Config:
    """What every tool does first: load, override, pick the label set and
    the work dir (CLI > config > ``work_dirs/<config name>``)."""
    if not osp.isfile(config):
        raise SystemExit(f'error: config file {config} not found')
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    if label_set:
        apply_label_set(cfg, label_set)
    check_num_classes(cfg, config)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg
