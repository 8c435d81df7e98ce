"""cardamage-mmseg: car-damage segmentation on MMSegmentation 1.x.

``import cardamage_mmseg`` is light: it imports neither torch nor mmseg, so
the torch-free core (:mod:`cardamage_mmseg.core`: photos, reports, masks,
overlays) serves runtimes without the OpenMMLab stack. The modules that
register into mmseg's registries are imported by
:mod:`cardamage_mmseg.register`; configs name it in ``custom_imports``
(``dict(imports=['cardamage_mmseg.register'])``), the way mmseg's
``projects/`` name their modules, and the tools and
:class:`~cardamage_mmseg.apis.DamageSegmenter` import it themselves.

On import, a version clash that would break ``import mmseg.models`` later
is worked around first (stdlib only; see :mod:`.utils.compat`).
"""
from .utils.compat import disable_broken_mmpretrain_multimodal
from .version import __version__

disable_broken_mmpretrain_multimodal()

__all__ = ['__version__']
