from . import losses  # noqa: F401
from . import segmentors  # noqa: F401
