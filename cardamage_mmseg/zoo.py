"""The baselines of the study, in one place (tests, benchmarks and the
README's model-zoo table all read this)."""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from mmengine.model.utils import revert_sync_batchnorm
from mmseg.registry import MODELS

from .cli.config import apply_label_set
from .utils.config import load_config


@dataclass(frozen=True)
class Baseline:
    config: str
    study_name: str
    study_miou: Optional[float]  # published test mIoU (AI Hub split)
    study_damage_iou: Optional[float]
    study_params_m: Optional[float]  # parameters of the study's version
    # --cfg-options that switch every pretrained download off
    offline: Tuple[str, ...] = ('model.backbone.init_cfg=None', )


BASELINES: Dict[str, Baseline] = {
    'segformer_b0': Baseline('configs/segformer_b0_cardamage.py',
                             'SegFormer-b0 (distillation student)', None,
                             None, 3.7),
    'segformer_b3': Baseline('configs/segformer_b3_cardamage.py',
                             'SegFormer-b3', 0.7115, 0.479, 47.0),
    'segformer_b5': Baseline('configs/segformer_b5_cardamage.py',
                             '-', None, None, None),
    'upernet_swin-t': Baseline('configs/upernet_swin-t_cardamage.py',
                               'UperNet Swin-T', 0.6511, 0.364, 60.0),
    'segformer_hf_b3': Baseline('configs/segformer_hf_b3_cardamage.py',
                                'SegFormer-b3 (HF head, as the study)',
                                0.7115, 0.479, 47.0),
    'dpt_vit-b16': Baseline('configs/dpt_vit-b16_cardamage.py',
                            '- (pure-ViT DPT; the study used DPT-hybrid)',
                            None, None, None,
                            offline=('model.pretrained=None', )),
    'dpt-hybrid': Baseline('configs/dpt-hybrid_cardamage.py',
                           'DPT-hybrid', 0.7052, 0.466, None,
                           offline=('model.hf_model.init_cfg=None', )),
    'deeplabv3_mobilevit-s': Baseline(
        'configs/deeplabv3_mobilevit-s_cardamage.py',
        'DeepLabV3-MobileViT-S', 0.604, 0.283, 6.4),
    'deeplabv3_mobilevitv2': Baseline(
        'configs/deeplabv3_mobilevitv2_cardamage.py', 'MobileViTv2',
        0.5584, 0.204, 13.0,
        offline=('model.backbone.pretrained=False', )),
    'mask2former_swin-t': Baseline(
        'configs/mask2former_swin-t_cardamage.py', 'Mask2Former Swin-T',
        None, None, 47.0),
}


def offline_options(name: str) -> dict:
    """The baseline's pretrained-download switches as a dict."""
    opts = {}
    for item in BASELINES[name].offline:
        key, value = item.split('=', 1)
        opts[key] = {'None': None, 'False': False}[value]
    return opts


def build_baseline(name: str, repo_root: str = '.', label_set='binary',
                   offline: bool = True, cfg_options: Optional[dict] = None):
    """Build a baseline's model from its config (no weights downloaded when
    ``offline``), SyncBN reverted for single-process use."""
    options = dict(offline_options(name)) if offline else {}
    options.update(cfg_options or {})
    cfg = load_config(osp.join(repo_root, BASELINES[name].config), options)
    apply_label_set(cfg, label_set)
    return revert_sync_batchnorm(MODELS.build(cfg.model))
