"""``init_cfg=dict(type='HFPretrained', checkpoint=...)``: pretrained
weights from a HuggingFace model directory or the local HF cache.

Why this is ours: mmengine's ``Pretrained`` reads OpenMMLab-layout files
(from OpenMMLab's download server for the SegFormer configs); machines that
have a HF cache (``nvidia/mit-b3``) but cannot reach that server had no way
to initialise. Two kinds of module take it:

* a MiT backbone (:class:`MixVisionTransformer` and subclasses): the HF MiT
  encoder (``SegformerModel`` / ``...ForImageClassification`` / a whole
  SegFormer) converted by :mod:`.converters.segformer_hf`; every backbone
  key must be filled (else ``CheckpointMismatchError``);
* :class:`~.backbones.HFSemanticSegModel`: loaded by transformers'
  ``from_pretrained`` into the module's own architecture (tensors of
  another shape, e.g. a classifier for other labels, stay random, as
  ``ignore_mismatched_sizes`` does).

``local_files_only`` (default True): a Hub id is looked up in the HF cache
only; set False to let huggingface_hub download it.
"""
from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from mmseg.models.backbones import MixVisionTransformer
from torch import nn

from ..utils.checkpoint import check_state_dict
from ..utils.hf_files import read_hf_state_dict, resolve_hf_dir
from .backbones.hf_model import HFSemanticSegModel, import_transformers
from .converters.segformer_hf import hf_to_mmseg_state


@WEIGHT_INITIALIZERS.register_module(name='HFPretrained')
class HFPretrainedInit:
    """Load HF weights into a MiT backbone or a wrapped HF model."""

    def __init__(self, checkpoint: str, local_files_only: bool = True
                 ) -> None:
        self.checkpoint = checkpoint
        self.local_files_only = local_files_only
        self.wholemodule = False

    def __call__(self, module: nn.Module) -> None:
        folder = resolve_hf_dir(self.checkpoint, self.local_files_only)
        print_log(f'load HF weights from {folder}', logger='current')
        if isinstance(module, MixVisionTransformer):
            state = hf_to_mmseg_state(read_hf_state_dict(folder),
                                      with_head=False)
            state = {k[len('backbone.'):]: v for k, v in state.items()}
            check_state_dict(module, state, self.checkpoint,
                             type(module).__name__)
            module.load_state_dict(state)
        elif isinstance(module, HFSemanticSegModel):
            transformers = import_transformers()
            pretrained = transformers.AutoModelForSemanticSegmentation \
                .from_pretrained(folder, config=module.model.config,
                                 ignore_mismatched_sizes=True,
                                 local_files_only=True)
            module.model.load_state_dict(pretrained.state_dict())
        else:
            raise TypeError(f'HFPretrained initialises a MiT backbone or an '
                            f'HFSemanticSegModel, not '
                            f'{type(module).__name__}')
