"""The damage-assessment service (FastAPI): :func:`create_app` around any
segmenter, dynamic batching (:class:`Batcher`), metrics. Torch-free: it
serves an exported model in a slim install (``pip install
cardamage-mmseg[serve]``) as well as a config's PyTorch model."""
from .app import ServiceSettings, create_app
from .batcher import Batcher, Overloaded

__all__ = ['Batcher', 'Overloaded', 'ServiceSettings', 'create_app']
