"""The baselines of the study, in one place (tests, benchmarks and the
README's model-zoo table all read this)."""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Baseline:
    config: str
    study_name: str
    study_miou: Optional[float]  # published test mIoU (AI Hub split)
    study_damage_iou: Optional[float]
    study_params_m: Optional[float]  # parameters of the study's version
    needs: Tuple[str, ...] = ()  # optional packages
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
    'dpt_vit-b16': Baseline('configs/dpt_vit-b16_cardamage.py',
                            'DPT-hybrid', 0.7052, 0.466, None,
                            offline=('model.pretrained=None', )),
    'deeplabv3_mobilevit-s': Baseline(
        'configs/deeplabv3_mobilevit-s_cardamage.py',
        'DeepLabV3-MobileViT-S', 0.604, 0.283, 6.4, ('mmpretrain', )),
    'deeplabv3_mobilevitv2': Baseline(
        'configs/deeplabv3_mobilevitv2_cardamage.py', 'MobileViTv2',
        0.5584, 0.204, 13.0, ('timm', ),
        offline=('model.backbone.pretrained=False', )),
    'mask2former_swin-t': Baseline(
        'configs/mask2former_swin-t_cardamage.py', 'Mask2Former Swin-T',
        None, None, 47.0, ('mmdet', )),
}
