"""One safe way to read checkpoints: ``torch.load(weights_only=True)`` plus
an explicit allow-list.

Why this is ours: mmengine 0.10.7 calls ``torch.load`` without
``weights_only``. Since torch 2.6 that defaults to ``True``, so a checkpoint
written by mmengine's own ``CheckpointHook`` fails to load (its message hub
holds ``HistoryBuffer`` objects and numpy arrays). Switching ``weights_only``
off would execute arbitrary pickles from untrusted files, so instead we
allow exactly the extra types mmengine/mmseg checkpoints carry, and register
the loader for local paths and http(s) URLs in mmengine's
:class:`CheckpointLoader`. Every load in the project (``load_from``,
``--resume``, ``init_cfg`` pretrained weights, ensemble members, the teacher,
inference) then goes through :func:`load_checkpoint_file`.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint file could not be loaded; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds an object outside the allow-list (refused unread)."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated or is not a checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the model of the config."""


class DownloadError(CheckpointError):
    """Pretrained weights could not be downloaded (no internet, a proxy,
    a moved file); the message says where to put them by hand."""


#: how many keys a mismatch message shows per kind
SHOWN_KEYS = 3
PARTIAL_HINT = ('To load it partly anyway (what does not fit stays as '
                'initialised): --partial-checkpoint in the tools, '
                'strict=False in the API; to fine-tune from another model, '
                'use load_from or init_cfg as mmseg does.')


def state_dict_of(checkpoint: Any) -> Dict[str, Any]:
    """The weights of a loaded checkpoint: its ``state_dict`` (or the
    dict itself), with the ``module.`` prefix of DDP-saved files removed
    (as mmengine's loader does)."""
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f'no state dict in the checkpoint '
                                     f'({type(state).__name__})')
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def _network(model: nn.Module) -> nn.Module:
    """The model inside a DDP/frozen wrapper and test-time augmentation.
    """
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def check_state_dict(model: nn.Module, state_dict: Dict[str, Any],
                     checkpoint: str, config: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` has
    exactly the model's keys, each with the model's shape: a checkpoint of
    another model, an empty or renamed one, or another head size would
    otherwise load silently and leave random weights (mmengine only logs
    the mismatch). The message names the checkpoint, the config and the
    first keys of each kind."""
    own = _network(model).state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k} {tuple(v.shape)} (model: {tuple(own[k].shape)})'
              for k, v in state_dict.items()
              if k in own and hasattr(v, 'shape')
              and tuple(v.shape) != tuple(own[k].shape)]
    problems = [f'{len(keys)} {what} (first: {", ".join(keys[:SHOWN_KEYS])})'
                for keys, what in ((missing, 'missing key(s)'),
                                   (unexpected, 'unexpected key(s)'),
                                   (shapes, 'of another shape')) if keys]
    if problems:
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint} does not fit the model of {config}: '
            f'{"; ".join(problems)}. Is it a checkpoint of this config? '
            f'{PARTIAL_HINT}')


def check_checkpoint_fits(model: nn.Module, checkpoint: str,
                          config: str) -> None:
    """Read ``checkpoint`` (safely) and :func:`check_state_dict` it
    against ``model``."""
    check_state_dict(model, state_dict_of(load_checkpoint_file(
        checkpoint, map_location='cpu')), checkpoint, config)


def _numpy_globals() -> List[Any]:
    """numpy objects that pickled arrays and scalars reference."""
    core = getattr(np, '_core', None) or np.core  # numpy 2 / numpy 1
    allowed: List[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct,
                          core.multiarray.scalar]
    for name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                 'uint16', 'uint32', 'uint64', 'float16', 'float32',
                 'float64', 'complex64', 'complex128', 'str', 'object'):
        dtype = np.dtype(name)
        allowed.append(type(dtype))  # numpy>=1.25: numpy.dtypes.Float64DType
        allowed.append(dtype.type)  # numpy.float64 etc. for old pickles
    return allowed


HISTORY_BUFFER_STATISTICS = ('min', 'max', 'mean', 'current')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    A pickled ``HistoryBuffer`` references its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would let a
    crafted file reach e.g. ``numpy.ndarray.tofile`` and write files, so
    only these exact lookups are served.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r})'
        f' is not allowed in a checkpoint')


def allowed_globals() -> List[Any]:
    """The allow-list: what mmengine/mmseg checkpoints hold beyond tensors.

    - ``HistoryBuffer`` (mmengine's message hub, saved by ``CheckpointHook``)
    - numpy arrays, dtypes and scalars (inside ``HistoryBuffer`` and
      ``meta``)
    - ``ConfigDict`` (``meta`` may carry config fragments)
    - ``getattr``, restricted to ``HistoryBuffer``'s statistics methods
    Nothing here can run code when unpickled.
    """
    from mmengine.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, ConfigDict, *_numpy_globals(),
            (_history_buffer_getattr, 'builtins.getattr')]


def load_checkpoint_file(filename: Union[str, os.PathLike],
                         map_location: Optional[Union[str, Callable]] = None
                         ) -> Any:
    """Load a checkpoint with ``weights_only=True`` and the allow-list.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the pickle references a global outside the
            allow-list (for example ``os.system``); nothing of it is run.
        CorruptCheckpointError: the file is truncated or not a checkpoint.
    """
    path = osp.expanduser(os.fspath(filename))
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        unsafe = [line.strip() for line in msg.splitlines()
                  if 'unsupported global' in line.lower()
                  or 'not allowed' in line]
        if unsafe:
            raise UnsafeCheckpointError(
                f'Refused to load checkpoint {path}: it references objects '
                f'that are not in the allow-list of checkpoint types '
                f'({unsafe[0][:300]}). Nothing of it was executed. Only load '
                f'checkpoints from sources you trust; convert it to a plain '
                f'state_dict if it is yours.') from None
        raise CorruptCheckpointError(
            f'Checkpoint {path} is corrupt or truncated '
            f'({osp.getsize(path)} bytes): {msg[:200]}') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise CorruptCheckpointError(
            f'Checkpoint {path} is corrupt or truncated '
            f'({osp.getsize(path)} bytes): {str(err)[:200]}') from None


def _load_from_local(filename: str, map_location=None) -> Any:
    return load_checkpoint_file(filename, map_location)


def _load_from_http(filename: str, map_location=None, model_dir=None) -> Any:
    """Download once into torch's hub cache (rank 0 first), then load safely.
    """
    from torch.hub import download_url_to_file, get_dir
    from urllib.parse import urlparse
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        try:
            download_url_to_file(filename, cached, progress=True)
        except OSError as err:  # URLError, HTTPError, timeouts, ...
            raise DownloadError(
                f'cannot download the pretrained weights {filename} '
                f'({type(err).__name__}: {err}). Without internet: fetch '
                f'that file elsewhere and put it at {cached} (the download '
                f'cache, $TORCH_HOME/hub/checkpoints), or point the config '
                f'at a local copy (for the backbone of most configs: '
                f'--cfg-options model.backbone.init_cfg.checkpoint=PATH), '
                f'or train from random weights (--cfg-options '
                f'model.backbone.init_cfg=None; expect far lower scores)'
            ) from None
    if world_size > 1:
        torch.distributed.barrier()
    return load_checkpoint_file(cached, map_location)


def register_safe_checkpoint_loaders() -> None:
    """Make mmengine's ``CheckpointLoader`` use the safe loader.

    Idempotent; called on ``import cardamage_mmseg.register`` and by
    :mod:`cardamage_mmseg.models.frozen`.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local,
                                     force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                     loader=_load_from_http, force=True)
