"""Files of a HuggingFace ``save_pretrained`` directory, read locally.

A directory holds ``config.json`` and weights as ``model.safetensors``
(or shards listed in ``model.safetensors.index.json``), or, from older
releases, ``pytorch_model.bin`` (a pickle: read through the project's safe
loader, never ``torch.load`` with full unpickling). A Hub id resolves to a
snapshot in the local HF cache; the network is used only where the caller
allows it.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

from torch import Tensor

from .checkpoint import load_checkpoint_file, state_dict_of

SAFETENSORS = 'model.safetensors'
SAFETENSORS_INDEX = 'model.safetensors.index.json'
PICKLE_WEIGHTS = 'pytorch_model.bin'


class HFFilesError(ValueError):
    """A HF model directory that is missing or incomplete; names it."""


def resolve_hf_dir(name_or_path: str, local_files_only: bool = True) -> str:
    """A local directory: ``name_or_path`` itself if it is one, else the
    snapshot of that Hub id in the HF cache (downloaded only with
    ``local_files_only=False``)."""
    if osp.isdir(name_or_path):
        return name_or_path
    if osp.exists(name_or_path) or name_or_path.startswith(('.', '/')):
        raise HFFilesError(f'{name_or_path} is not a HF model directory')
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise HFFilesError(f'{name_or_path} is not a directory, and Hub ids '
                           f'need huggingface_hub (pip install -e ".[hf]")'
                           ) from error
    try:
        return snapshot_download(
            name_or_path, local_files_only=local_files_only,
            allow_patterns=['*.json', '*.safetensors', '*.bin', '*.md',
                            'LICENSE*'])
    except Exception as error:  # the hub raises many kinds
        where = 'in the local HF cache' if local_files_only else 'on the Hub'
        raise HFFilesError(f'HF model {name_or_path!r} not found {where}: '
                           f'{type(error).__name__}: {error}') from None


def read_hf_json(folder: str, name: str = 'config.json',
                 required: bool = True) -> Optional[dict]:
    """A JSON file of the directory (None if absent and not required)."""
    path = osp.join(folder, name)
    if not osp.isfile(path):
        if required:
            raise HFFilesError(f'{folder} has no {name}: is it a HF '
                               f'save_pretrained directory?')
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise HFFilesError(f'{path} is not valid JSON: {error}') from None


def hf_weight_files(folder: str) -> List[str]:
    """The weight files of a ``save_pretrained`` directory, in the order
    :func:`read_hf_state_dict` prefers: ``model.safetensors``, else the
    shards its index lists, else ``pytorch_model.bin``; [] if none."""
    if osp.isfile(osp.join(folder, SAFETENSORS)):
        return [osp.join(folder, SAFETENSORS)]
    index = read_hf_json(folder, SAFETENSORS_INDEX, required=False)
    if index is not None:
        return [osp.join(folder, shard) for shard in
                sorted(set(index.get('weight_map', {}).values()))]
    if osp.isfile(osp.join(folder, PICKLE_WEIGHTS)):
        return [osp.join(folder, PICKLE_WEIGHTS)]
    return []


def read_hf_state_dict(folder: str) -> Dict[str, Tensor]:
    """The weights of a ``save_pretrained`` directory (safetensors first,
    then the pickled ``.bin`` through the safe loader)."""
    from safetensors.torch import load_file
    files = hf_weight_files(folder)
    if not files:
        raise HFFilesError(f'{folder} has no weights ({SAFETENSORS}, '
                           f'{SAFETENSORS_INDEX} or {PICKLE_WEIGHTS})')
    if files[0].endswith(PICKLE_WEIGHTS):
        return state_dict_of(load_checkpoint_file(files[0],
                                                  map_location='cpu'))
    state = {}
    for path in files:
        state.update(load_file(path))
    return state
