"""A model wrapper for distributed runs of models with nothing to train.

Why this is ours: mmengine wraps every model in DistributedDataParallel
when launched with several processes, and DDP refuses a module without a
trainable parameter, which an ``EnsembleSegmentor`` (frozen members) is.
Testing needs no gradient synchronisation: each rank predicts its shard and
the evaluator gathers the results, so this wrapper only forwards the calls.
"""
import torch.nn as nn
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class FrozenModelWrapper(nn.Module):
    """Holds ``module``; ``val_step``/``test_step`` call it directly."""

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__()
        self.module = module

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
