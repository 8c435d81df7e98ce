"""Loading configs, and the checks every loader runs before building.

Every config the project loads (tools, ensemble members, teachers,
baselines, :class:`~cardamage_mmseg.apis.DamageSegmenter`) goes through
:func:`load_config`. Problems raise :class:`ConfigError` (a ``ValueError``)
naming the file and the fix, so an API caller can catch them; the tools turn
them into a message and exit code 2.
"""
import importlib.util
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.config import config as mmengine_config
from mmengine.utils import import_modules_from_strings
from mmseg.registry import DATASETS

from .deprecation import moved_names

#: ``load_config('cardamage_mmseg::segformer_b0_cardamage.py')`` reads a
#: config shipped with the package (like ``mmseg::`` for mmseg's)
PACKAGE_PREFIX = 'cardamage_mmseg::'
#: the module configs import in ``custom_imports`` to register the project
REGISTER_MODULE = 'cardamage_mmseg.register'

#: optional package -> (what needs it, how to install it)
OPTIONAL_PACKAGES = {
    'mmdet': ('Mask2Former (mmdet.* modules)', 'pip install mmdet==3.3.0'),
    'timm': ('TIMMBackbone (MobileViTv2)', 'pip install timm==1.0.31'),
    'mmpretrain': ('mmpretrain backbones (MobileViT)',
                   'pip install mmpretrain==1.2.0'),
    'transformers': ('HuggingFace models (HFSegmentor, HFPretrained)',
                     'pip install -e ".[hf]"'),
}


def _base_configs_skip_the_metafile_scan() -> None:
    """Resolve ``mmseg::_base_/...`` without reading mmseg's model index.

    Why this is ours: mmengine 0.10.7 looks every ``package::path`` up in
    all metafiles of the package's model index first (53 YAML files for
    mmseg, 0.38 s here, for each such base of each config parsed: a
    config parse took 0.60 s instead of 0.08 s) and, when the path is not
    there, falls back to ``.mim/configs/<path>``. Base configs are never
    in a metafile, so they go to that fallback at once: the same path,
    without the scan. Other names are looked up as before. Idempotent.
    """
    lookup = mmengine_config._get_external_cfg_path
    if getattr(lookup, 'skips_base_configs', False):
        return

    def external_cfg_path(package_path: str, cfg_file: str) -> str:
        if cfg_file.startswith('_base_/'):
            raise ValueError(f'{cfg_file}: a base config has no metafile '
                             f'entry')
        return lookup(package_path, cfg_file)

    external_cfg_path.skips_base_configs = True
    mmengine_config._get_external_cfg_path = external_cfg_path


_base_configs_skip_the_metafile_scan()


class ConfigError(ValueError):
    """A config cannot be used as it is; the message names it and the fix.
    """


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file that does not exist (also a ``FileNotFoundError``)."""


def packaged_config_dir() -> str:
    """The folder of the configs shipped with the package: copied into an
    installed wheel as ``cardamage_mmseg/.mim/configs`` (mmseg's layout),
    or ``configs/`` beside the package in a checkout."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for folder in (osp.join(package, '.mim', 'configs'),
                   osp.join(osp.dirname(package), 'configs')):
        if osp.isdir(folder):
            return folder
    raise ConfigError(f'no configs shipped with {package} (neither .mim/'
                      f'configs nor a checkout\'s configs/)')


def resolve_config_path(config: str) -> str:
    """A config file's path: ``cardamage_mmseg::NAME`` is a packaged
    config (:func:`packaged_config_dir`), anything else a path."""
    path = config
    if config.startswith(PACKAGE_PREFIX):
        path = osp.join(packaged_config_dir(), config[len(PACKAGE_PREFIX):])
    if not osp.isfile(path):
        raise ConfigNotFoundError(f'config file {config} not found')
    return path


def locate_file(path: str, folders: Sequence[str], what: str) -> str:
    """``path`` itself if absolute, else the first ``folder/path`` that is
    a file. Raises ``FileNotFoundError`` naming ``what`` and every place
    tried."""
    if not path:
        raise FileNotFoundError(f'{what} not set')
    if osp.isabs(path):
        if osp.isfile(path):
            return path
        raise FileNotFoundError(f'{what} not found: {path}')
    tried = []
    for folder in folders:
        candidate = osp.abspath(osp.join(folder, path))
        if candidate not in tried:
            tried.append(candidate)
            if osp.isfile(candidate):
                return candidate
    raise FileNotFoundError(f'{what} {path} not found; tried ' +
                            ', '.join(tried))


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
    if "'HFSegmentor'" in text or "'HFSemanticSegModel'" in text:
        needed.add('transformers')
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
        raise ConfigError(f'{config_path or "the config"} needs packages '
                          f'that are not installed:\n' + '\n'.join(lines))


def _register_imports(cfg: Config, config_path: str) -> None:
    """``custom_imports`` naming the old registering package
    ``cardamage_mmseg`` (whose import no longer registers) name
    :data:`REGISTER_MODULE` instead, with a deprecation warning."""
    custom = cfg.get('custom_imports')
    imports = custom.get('imports', []) if custom else []
    if isinstance(imports, str):
        imports = [imports]
    if 'cardamage_mmseg' in imports:
        warnings.warn(
            f'{config_path}: custom_imports names \'cardamage_mmseg\'; name '
            f'\'{REGISTER_MODULE}\' (it registers the project\'s modules; '
            f'the old name stops working in the next release)',
            DeprecationWarning, stacklevel=3)
        custom['imports'] = [REGISTER_MODULE if name == 'cardamage_mmseg'
                             else name for name in imports]


def load_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (a path or ``cardamage_mmseg::NAME``), fail early on
    missing optional packages, import its ``custom_imports``, apply
    overrides."""
    cfg = Config.fromfile(resolve_config_path(config),
                          import_custom_modules=False)
    check_dependencies(cfg, config)
    if cfg.get('custom_imports'):
        _register_imports(cfg, config)
        import_modules_from_strings(**cfg.custom_imports)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = cfg.get('model')
    if isinstance(model, dict) and model.get('type') == 'EnsembleSegmentor':
        # members' relative paths are relative to this config's folder
        model.setdefault('config_dir', osp.dirname(osp.abspath(
            resolve_config_path(config))))
    return cfg


def innermost_dataset(dataset: dict) -> dict:
    """The dataset inside ``RepeatDataset`` & co."""
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def model_heads(model: dict) -> List[Tuple[str, dict]]:
    """(name, head dict) of a model config's heads, through test-time
    augmentation and a distiller's student."""
    if model.get('type') == 'SegTTAModel':
        model = model['module']
    if model.get('type') == 'DistillSegmentor' and isinstance(
            model.get('student'), dict):
        return [(f'student.{n}', h) for n, h in model_heads(model.student)]
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
    dataset = innermost_dataset(dataset)
    classes = dataset.get('metainfo', {}).get('classes')
    if classes:
        return tuple(classes)
    cls = DATASETS.get(dataset.get('type', ''))
    meta = getattr(cls, 'METAINFO', None) if cls else None
    return tuple(meta['classes']) if meta and 'classes' in meta else None


def check_num_classes(cfg: Config, config_path: str = '') -> None:
    """Fail before anything is built when a head's ``num_classes`` differs
    from its data's class count: labels beyond the head's range crash
    inside the loss (a device-side assert on a GPU), and a head with extra
    classes trains silently on a task it cannot be scored on."""
    heads = [(n, h) for n, h in model_heads(cfg.model)
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
                raise ConfigError(
                    f'{config_path or "the config"}: model '
                    f'{name}.num_classes={head["num_classes"]} but '
                    f'{key} has {len(classes)} classes {classes}. Pick the '
                    f'labels with --label-set {{binary,aihub}} (it sets '
                    f'both), or make them agree in the config.')


__getattr__ = moved_names(__name__, {
    'load_tool_config': 'cardamage_mmseg.cli.config:load_tool_config',
    'apply_label_set': 'cardamage_mmseg.cli.config:apply_label_set',
    'apply_loss_preset': 'cardamage_mmseg.cli.config:apply_loss_preset',
    'LABEL_SETS': 'cardamage_mmseg.cli.config:LABEL_SETS',
})
