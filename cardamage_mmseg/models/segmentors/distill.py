"""DistillSegmentor: train a student segmentor under a frozen teacher.

Why this is ours: mmseg has no distillation (OpenMMLab's mmrazor is not
maintained for mmseg 1.2 / mmengine 0.10). It trains with the standard
``tools/train.py`` (resume, AMP, several GPUs) and predicts with the student
alone, so validation measures the deployable model.

Teacher contract: built once from its config and checkpoint (a missing file
fails at construction, not hours later), frozen, always in eval mode, and
kept *outside* the module tree: it is not in ``parameters()`` (so not in the
optimizer, nor wrapped by DDP), not in ``state_dict()`` (so not in
checkpoints) and ``model.train()`` cannot switch it to training mode.
"""
import copy
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor

from ...utils.config import load_config
from ..frozen import load_frozen_model


def _student_cfg(student: Union[str, dict]) -> dict:
    if isinstance(student, str):
        return copy.deepcopy(load_config(student).model)
    return copy.deepcopy(student)


@MODELS.register_module()
class DistillSegmentor(BaseSegmentor):
    """Student + frozen teacher + distillation losses.

    Args:
        student (dict | str): The student's model config, or a config file
            whose ``model`` is the student.
        teacher (dict): ``dict(config=..., checkpoint=..., device=None,
            strict=True)`` (``strict``: the checkpoint must fit).
        distill_losses (list[dict]): Modules of :mod:`..losses.distill_losses`
            (each logged under its ``loss_name``).
        data_preprocessor (dict, optional): Defaults to the student's.
    """

    def __init__(self,
                 student: Union[str, dict],
                 teacher: dict,
                 distill_losses: Optional[List[dict]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        student_cfg = _student_cfg(student)
        if data_preprocessor is None:
            data_preprocessor = student_cfg.get('data_preprocessor')
        student_cfg.pop('data_preprocessor', None)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(teacher, dict) or 'config' not in teacher:
            raise ValueError(
                'teacher must be dict(config=..., checkpoint=...)')
        teacher_model, _ = load_frozen_model(
            teacher['config'], teacher.get('checkpoint'),
            teacher.get('device') or 'cpu',
            strict=teacher.get('strict', True))
        # outside the module tree: see the module docstring
        object.__setattr__(self, '_teacher', teacher_model)
        self.student = MODELS.build(student_cfg)
        counts = [getattr(m.decode_head, 'num_classes', None)
                  for m in (teacher_model, self.student)]
        if None not in counts and counts[0] != counts[1]:
            raise ValueError(
                f'teacher {teacher["config"]} predicts {counts[0]} classes, '
                f'the student {counts[1]}: distil from a teacher trained on '
                f'the same labels (--label-set)')
        self.distill_losses = torch.nn.ModuleList(
            [MODELS.build(cfg) for cfg in (distill_losses or [])])
        names = [loss.loss_name for loss in self.distill_losses]
        if len(set(names)) != len(names):
            raise ValueError(f'distill loss names must differ: {names}')
        self.align_corners = self.student.align_corners
        self._renorm = self._input_conversion(
            self.data_preprocessor, teacher_model.data_preprocessor)

    # -- teacher ----------------------------------------------------------
    @property
    def teacher(self):
        return self._teacher

    @staticmethod
    def _input_conversion(student_dp, teacher_dp):
        """None if both preprocessors agree, else the parameters to turn a
        student-normalised batch into a teacher-normalised one."""
        same = (student_dp.channel_conversion ==
                teacher_dp.channel_conversion and
                torch.equal(student_dp.mean, teacher_dp.mean) and
                torch.equal(student_dp.std, teacher_dp.std))
        if same:
            return None
        return (student_dp.mean.clone(), student_dp.std.clone(),
                teacher_dp.mean.clone(), teacher_dp.std.clone(),
                student_dp.channel_conversion !=
                teacher_dp.channel_conversion)

    def _teacher_inputs(self, inputs: Tensor) -> Tensor:
        if self._renorm is None:
            return inputs
        ms, ss, mt, st, swap = (t.to(inputs) if isinstance(t, Tensor) else t
                                for t in self._renorm)
        raw = inputs * ss + ms
        if swap:
            raw = raw[:, [2, 1, 0]]
        return (raw - mt) / st

    def _teacher_forward(self, inputs: Tensor):
        teacher = self._teacher
        device = inputs.device
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        teacher.eval()
        with torch.no_grad():
            feats = teacher.extract_feat(self._teacher_inputs(inputs))
            logits = teacher.decode_head.forward(feats)
        return feats, logits

    def train(self, mode: bool = True):
        super().train(mode)
        self._teacher.eval()
        return self

    # -- training ---------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        student = self.student
        feats = student.extract_feat(inputs)
        logits = student.decode_head.forward(feats)
        losses = add_prefix(
            student.decode_head.loss_by_feat(logits, data_samples), 'decode')
        if student.with_auxiliary_head:
            losses.update(
                student._auxiliary_head_forward_train(feats, data_samples))
        if not self.distill_losses:
            return losses
        t_feats, t_logits = self._teacher_forward(inputs)
        valid = self._valid_mask(data_samples, logits.shape[-2:])
        for loss in self.distill_losses:
            if loss.input == 'features':
                value = loss(feats[loss.student_index],
                             t_feats[loss.teacher_index])
            else:
                value = loss(logits, t_logits, valid)
            losses[f'distill.{loss.loss_name}'] = value
        return losses

    def _valid_mask(self, data_samples, size) -> Optional[Tensor]:
        ignore = self.student.decode_head.ignore_index
        labels = torch.stack(
            [s.gt_sem_seg.data for s in data_samples]).float()
        labels = F.interpolate(labels, size=size, mode='nearest')[:, 0]
        return labels != ignore

    # -- inference: the student alone -------------------------------------
    def predict(self, inputs: Tensor, data_samples=None):
        return self.student.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples=None):
        return self.student._forward(inputs, data_samples)

    def extract_feat(self, inputs: Tensor):
        return self.student.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_data_samples):
        return self.student.encode_decode(inputs, batch_data_samples)

    @property
    def decode_head(self):
        return self.student.decode_head


def student_state_dict(state_dict: dict) -> dict:
    """Keep only ``student.*`` keys, without the prefix (drops adapters,
    distillation losses and anything else training-only)."""
    return {k[len('student.'):]: v for k, v in state_dict.items()
            if k.startswith('student.')}


__all__ = ['DistillSegmentor', 'student_state_dict']
