"""Config rewriting the tools do on request: the label set (``--label-set``),
a loss combination (``--loss``) and the work dir, and
:func:`load_tool_config`, which every tool calls first."""
import copy
import glob
import os.path as osp
import re
from typing import List, Optional

from mmengine.config import Config

from ..utils.config import (ConfigError, check_num_classes, innermost_dataset,
                            load_config, model_heads, packaged_config_dir)

LABEL_SETS = {
    'binary': ('CarDamageDataset', 2),
    'aihub': ('AIHubCarDamageDataset', 5),
}
_DATASET_TYPES = {t for t, _ in LABEL_SETS.values()}
#: loss combinations: ``configs/_base_/losses/<name>.py``, each defining
#: ``loss_decode`` (the configs that train with one inherit the same file)
LOSS_CONFIG_DIR = osp.join('_base_', 'losses')


def _set_num_classes(head: dict, num_classes: int) -> None:
    if 'num_classes' in head:
        head['num_classes'] = num_classes
    # Mask2Former: one weight per class plus the "no object" weight
    cls_loss = head.get('loss_cls')
    if isinstance(cls_loss, dict) and isinstance(
            cls_loss.get('class_weight'), list):
        cls_loss['class_weight'] = [1.0] * num_classes + [
            cls_loss['class_weight'][-1]]


def apply_label_set(cfg: Config, label_set: str) -> Config:
    """Switch a config between the binary and the AI Hub 5-class labels.

    Sets the dataset type of every dataloader and ``num_classes`` of every
    head (decode, auxiliary, Mask2Former's class weights; a distiller's
    student). One flag instead of a new file per model.
    """
    if label_set not in LABEL_SETS:
        raise ConfigError(f'unknown label set {label_set!r}; choose from '
                          f'{sorted(LABEL_SETS)}')
    dataset_type, num_classes = LABEL_SETS[label_set]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = innermost_dataset(loader['dataset'])
        if dataset.get('type') in _DATASET_TYPES:
            dataset['type'] = dataset_type
    for _, head in model_heads(cfg.model):
        _set_num_classes(head, num_classes)
    return cfg


def loss_preset_names() -> List[str]:
    """Names of the loss combinations (files in
    ``configs/_base_/losses/``)."""
    folder = osp.join(packaged_config_dir(), LOSS_CONFIG_DIR)
    return sorted(osp.splitext(osp.basename(p))[0]
                  for p in glob.glob(osp.join(folder, '*.py')))


def loss_preset(name: str, scale: float = 1.0) -> List[dict]:
    """``loss_decode`` of combination ``name``, every ``loss_weight``
    times ``scale``."""
    names = loss_preset_names()
    if name not in names:
        raise ConfigError(f'unknown loss combination {name!r}; choose from '
                          f'{names}')
    path = osp.join(packaged_config_dir(), LOSS_CONFIG_DIR, name + '.py')
    losses = copy.deepcopy(Config.fromfile(path).loss_decode)
    for loss in losses:
        loss['loss_weight'] = loss['loss_weight'] * scale
    return [dict(loss) for loss in losses]


def apply_loss_preset(cfg: Config, name: str,
                      auxiliary_scale: float = 0.4) -> Config:
    """Set ``loss_decode`` of every head to a named combination.

    Auxiliary heads get the same terms with weights times
    ``auxiliary_scale`` (mmseg's 0.4 convention). Mask2Former's set-based
    losses are not ``loss_decode`` lists: refused with a clear message.
    """
    model = cfg.model
    if model.get('type') == 'SegTTAModel':
        model = model['module']
    head = model.get('decode_head', {})
    if 'loss_decode' not in head:
        raise ConfigError(
            f'--loss does not apply to {head.get("type", "this head")} '
            f'(Mask2Former uses its own set-based losses)')
    head['loss_decode'] = loss_preset(name)
    aux = model.get('auxiliary_head')
    for h in (aux if isinstance(aux, list) else [aux] if aux else []):
        h['loss_decode'] = loss_preset(name, auxiliary_scale)
    return cfg


def find_resume_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` continues from, found relative to
    ``work_dir``: the one ``last_checkpoint`` names (looked up beside it
    when the recorded absolute path is gone: a moved work dir), else the
    highest ``iter_N.pth`` / ``epoch_N.pth``. Raises :class:`ConfigError`
    when there is none (mmengine would train from scratch with exit 0)."""
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            recorded = f.read().strip()
        for path in (recorded, osp.join(work_dir, osp.basename(recorded))):
            if recorded and osp.isfile(path):
                return path
    numbered = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        match = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))
        if match:
            numbered.append((int(match[1]), path))
    if numbered:
        return max(numbered)[1]
    raise ConfigError(f'--resume: nothing to resume in {work_dir} (no '
                      f'last_checkpoint, no iter_N.pth or epoch_N.pth). '
                      f'Train without --resume, or give --work-dir of the '
                      f'run to continue, or --resume CHECKPOINT.')


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     label_set: Optional[str] = None,
                     work_dir: Optional[str] = None,
                     launcher: str = 'none') -> Config:
    """What every tool does first: load, override, pick the label set,
    check the class counts, set the work dir (CLI > config >
    ``work_dirs/<config name>``)."""
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
