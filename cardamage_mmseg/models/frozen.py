"""Load a trained model, frozen: what inference, ensemble members and
distillation teachers share."""
import copy
import os.path as osp
from typing import Optional, Tuple, Union

from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.runner.checkpoint import load_state_dict
from mmseg.registry import MODELS
from torch import nn

from ..utils.checkpoint import (check_state_dict, load_checkpoint_file,
                                register_safe_checkpoint_loaders,
                                state_dict_of)
from ..utils.config import dataset_classes, load_config

# every load below goes through the safe loader, whoever imported this
register_safe_checkpoint_loaders()


def checkpoint_classes(cfg: Config, checkpoint: dict) -> Optional[tuple]:
    """Class names a trained model predicts: the checkpoint's
    ``meta.dataset_meta``, else its config's test data; None if unknown."""
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    classes = meta.get('dataset_meta', {}).get('classes')
    if classes:
        return tuple(classes)
    return dataset_classes(cfg.get('test_dataloader', {}).get('dataset', {}))


def load_frozen_model(config: Union[str, Config],
                      checkpoint: str,
                      device: str = 'cpu',
                      cfg_options: Optional[dict] = None,
                      strict: bool = True
                      ) -> Tuple[nn.Module, Optional[tuple]]:
    """Build a model from its config (a path, read by ``load_config``
    with ``cfg_options``; or a :class:`Config` that ``load_config`` already
    returned, used as it is) and load its checkpoint through the safe
    loader.

    Returns ``(model, classes)``: the model in eval mode on ``device``,
    every parameter frozen, SyncBN reverted to BN, pretrained-weight
    downloads switched off (the checkpoint holds the weights), its config
    as ``model.cfg``. ``strict``: the checkpoint must fit the model
    exactly (:func:`~..utils.checkpoint.check_state_dict`, else
    ``CheckpointMismatchError``); ``False`` loads what fits and logs the
    rest.
    """
    name = config if isinstance(config, str) else config.filename
    if not checkpoint or not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint of {name} not found: '
                                f'{checkpoint}')
    # a loaded config was checked and its modules imported by load_config
    # (its dependency check alone formats the whole config: 0.4 s for b3)
    if isinstance(config, Config) and cfg_options:
        raise ValueError('cfg_options apply to a config path; merge them '
                         'into a loaded Config first')
    cfg = config if isinstance(config, Config) else load_config(
        config, cfg_options)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    backbone = model_cfg.get('backbone', {})
    backbone.pop('init_cfg', None)  # weights come from the checkpoint
    if backbone.get('type') == 'TIMMBackbone':
        backbone['pretrained'] = False
    model = MODELS.build(model_cfg)
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    state = state_dict_of(ckpt)
    if strict:
        check_state_dict(model, state, checkpoint, name)
    load_state_dict(model, state, strict=False, logger='current')
    model = revert_sync_batchnorm(model).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.cfg = cfg
    return model, checkpoint_classes(cfg, ckpt)
