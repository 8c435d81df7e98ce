"""What an exported model carries so that a runtime needs nothing else.

``tools/export.py`` writes one JSON document under the ONNX metadata key
:data:`METADATA_KEY`; :func:`parse_metadata` reads and checks it. Schema
version 1::

    schema            "cardamage-mmseg/onnx"
    schema_version    1 (a runtime reads the versions up to its own)
    classes, palette  class names; [[r, g, b], ...]
    input             name, layout "NCHW", channel_order "RGB", dtype
                      "float32", value_range [0, 255]; normalisation
                      "in_graph" with its mean/std (in the model's channel
                      order, for the record); pad_value: the raw value
                      that padding takes (the mean: mmseg pads after
                      normalising, with 0); size_divisor; fixed_size
                      [h, w] or null (dynamic height and width)
    resize            {"type": "keep_ratio", "scale": [w, h]}: mmcv's
                      Resize(scale, keep_ratio=True), before padding
    output            name, layout "NTCHW", kind "log_softmax", at the
                      input's resolution (crop the padding away)
    terms             T: 1, or M ensemble members
    fusion            null, or (ensembles) {"rule", "weights",
                      "background_index", "flip", "members"}: the T
                      terms are the members' log-probabilities, which the
                      core fuses at the photo's size with ``rule``
                      (:mod:`~..core.fusion`); each member's entry has its
                      config, checkpoint, mean/std and channel order, and
                      input.mean/std/model_channel_order are null
    dynamic_batch     whether the batch size is free
    source            config (name, sha256 of its resolved text),
                      checkpoints (name, sha256)
    exporter          versions of cardamage-mmseg, torch, mmseg, onnx
                      opset
"""
import json
from typing import Any, Dict, List

#: the ONNX metadata_props key
METADATA_KEY = 'cardamage_mmseg'
SCHEMA = 'cardamage-mmseg/onnx'
#: the newest schema this runtime reads
SCHEMA_VERSION = 1

#: fields a version-1 document must have
REQUIRED = ('classes', 'palette', 'input', 'resize', 'output', 'terms')


class ModelFileError(ValueError):
    """A model file that this runtime cannot use; the message names it and
    says why."""


def dump_metadata(meta: Dict[str, Any]) -> str:
    """The JSON text stored under :data:`METADATA_KEY`."""
    return json.dumps(dict(meta, schema=SCHEMA,
                           schema_version=SCHEMA_VERSION), sort_keys=True)


def parse_metadata(props: Dict[str, str], path: str) -> Dict[str, Any]:
    """The checked metadata of the model file ``path`` from its
    ``metadata_props``. Raises :class:`ModelFileError` for a file that is
    not ours (no metadata), broken metadata, or a schema this runtime is
    too old for."""
    text = props.get(METADATA_KEY)
    if text is None:
        raise ModelFileError(
            f'{path}: not a cardamage-mmseg model (no {METADATA_KEY!r} '
            f'metadata): export it with tools/export.py CONFIG CHECKPOINT '
            f'--out {path}')
    try:
        meta = json.loads(text)
    except ValueError as err:
        raise ModelFileError(f'{path}: its {METADATA_KEY!r} metadata is '
                             f'not JSON ({err})') from None
    schema = meta.get('schema') if isinstance(meta, dict) else None
    if schema != SCHEMA:
        raise ModelFileError(f'{path}: metadata of another schema '
                             f'({schema!r}, not {SCHEMA!r})')
    version = meta.get('schema_version')
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f'{path}: metadata schema version {version!r}'
                             f' is not valid')
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            f'{path}: exported with metadata schema {version}; this '
            f'runtime reads up to {SCHEMA_VERSION}: upgrade cardamage-mmseg'
            f' (or export again with this version)')
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ModelFileError(f'{path}: metadata lacks {missing}')
    classes: List[str] = meta['classes']
    if len(classes) < 2 or len(meta['palette']) < len(classes):
        raise ModelFileError(f'{path}: metadata has {len(classes)} classes '
                             f'and {len(meta["palette"])} colours')
    return meta
