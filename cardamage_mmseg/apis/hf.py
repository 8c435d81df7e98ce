"""HuggingFace SegFormer checkpoints into the project and out to the Hub
format (``tools/model_converters/hf2mmseg.py`` and ``mmseg2hf.py``).

In: a local ``save_pretrained`` directory (``config.json`` + safetensors,
or a ``.bin`` through the safe loader; never the network) becomes a
checkpoint of :class:`~..models.decode_heads.SegformerHFHead` SegFormer and
an inherited config (architecture from ``config.json``, classes from
``id2label``, mean/std from ``preprocessor_config.json``). Out: a config
and checkpoint trained here with that head become a directory that
``SegformerForSemanticSegmentation.from_pretrained`` loads (Hub layout
safetensors, ``config.json`` with ``id2label``, the image processor with
this project's mean/std) and a model card. Licences travel: the source's
model-card fields and ``LICENSE*`` files are copied into what is written.
Nothing existing is overwritten.
"""
import os
import os.path as osp
import shutil
import uuid
from typing import List, Optional, Sequence

import torch
import yaml

from ..core.files import (TMP_PREFIX, atomic_write, atomic_write_bytes,
                          file_sha256)
from ..core.palette import palette_for
from ..models.converters.segformer_hf import (ConversionError,
                                              hf_config_from_mmseg,
                                              hf_to_mmseg_state,
                                              mmseg_to_hf_state,
                                              segformer_from_hf_config)
from ..models.frozen import checkpoint_classes, load_frozen_model
from ..utils.checkpoint import load_checkpoint_file, state_dict_of
from ..utils.config import load_config, packaged_config_dir
from ..utils.hf_files import (HFFilesError, hf_weight_files, read_hf_json,
                              read_hf_state_dict, resolve_hf_dir)
from ..version import __version__

#: HF's SegformerImageProcessor defaults (ImageNet), used when a directory
#: has no preprocessor_config.json
HF_DEFAULT_MEAN = (0.485, 0.456, 0.406)
HF_DEFAULT_STD = (0.229, 0.224, 0.225)
#: what NVIDIA's SegFormer / MiT weights are published under
NVIDIA_SEGFORMER_LICENSE = dict(
    license='other',
    license_name='nvidia-segformer',
    license_link='https://github.com/NVlabs/SegFormer/blob/master/LICENSE')
NVIDIA_TERMS = (
    'NVIDIA Source Code License for SegFormer: the weights and derivative '
    'works may be used non-commercially only, i.e. for research or '
    'evaluation purposes (NVIDIA and its affiliates excepted). Commercial '
    'use needs NVIDIA\'s permission or weights not derived from NVIDIA\'s.')
#: model-card fields copied from a source model card
CARD_FIELDS = ('license', 'license_name', 'license_link', 'base_model',
               'datasets', 'language', 'tags')
#: architectures the study used that hf2mmseg does not convert, and why
NOT_CONVERTED = {
    'dpt': 'OpenMMLab has no DPT-hybrid; run it as it is with '
           'HFSegmentor (configs/dpt-hybrid_cardamage.py, '
           'hf_model.config=<the directory>)',
    'mask2former': 'run mmseg\'s native Mask2Former '
                   '(configs/mask2former_swin-t_cardamage.py) or the HF '
                   'model through HFSegmentor',
    'mobilevitv2': 'the project\'s MobileViTv2 is timm\'s; run the HF model '
                   'through HFSegmentor',
    'mobilevit': 'not converted yet: HF\'s DeepLabV3-MobileViT and the '
                 'project\'s DilatedMobileViT + LightASPPHead follow the same '
                 'Apple design, but the map (mmpretrain\'s block names, the '
                 'ASPP branch order: HF pools last, mmseg first) is not '
                 'written; run the HF model through HFSegmentor',
    'upernet': 'UperNet + Swin-T is not converted yet (patch-merging '
               'channel order and relative-position tables need their own '
               'map); run it through HFSegmentor',
}


def _refuse_existing(path: str) -> None:
    if osp.exists(path):
        raise FileExistsError(f'{path} exists; not overwriting it (choose '
                              f'another name or remove it)')


def read_model_card(folder: str) -> dict:
    """The YAML front matter of ``folder/README.md`` ({} if none)."""
    path = osp.join(folder, 'README.md')
    if not osp.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if not text.startswith('---'):
        return {}
    end = text.find('\n---', 3)
    if end < 0:
        return {}
    try:
        fields = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError:
        return {}
    return fields if isinstance(fields, dict) else {}


def license_files(folder: str) -> List[str]:
    """``LICENSE*`` / ``LICENCE*`` files of a directory, sorted."""
    if not osp.isdir(folder):
        return []
    return sorted(
        osp.join(folder, n) for n in os.listdir(folder)
        if n.upper().startswith(('LICENSE', 'LICENCE'))
        and osp.isfile(osp.join(folder, n)))


def classes_of(hf_config: dict) -> List[str]:
    """Label names of a HF config, by id (``id2label``; else 0..n-1)."""
    id2label = hf_config.get('id2label') or {}
    if id2label:
        ids = sorted(int(i) for i in id2label)
        if ids != list(range(len(ids))):
            raise ConversionError(f'id2label ids {ids} are not 0..n-1')
        return [str(id2label.get(str(i), id2label.get(i))) for i in ids]
    return [str(i) for i in range(int(hf_config.get('num_labels', 2)))]


def _base_config_for(hf_config: dict) -> str:
    name = ('segformer_hf_b0_cardamage.py'
            if list(hf_config.get('hidden_sizes', [])) == [32, 64, 160, 256]
            else 'segformer_hf_b3_cardamage.py')
    return osp.join(packaged_config_dir(), name)


def _config_text(base: str, config_out: str, checkpoint: str,
                 overrides: dict, mean: Sequence[float],
                 std: Sequence[float], classes: Sequence[str],
                 source: str, license_line: str) -> str:
    rel = osp.relpath(osp.abspath(base), osp.dirname(osp.abspath(config_out)))
    backbone = dict(overrides['backbone'], init_cfg=None)
    lines = [
        f'# Converted from the HuggingFace model {source} by',
        f'# tools/model_converters/hf2mmseg.py (cardamage_mmseg '
        f'{__version__}).',
        f'# classes: {", ".join(classes)}',
        f'# licence: {license_line}',
        '# The converted weights (also the start of fine-tuning here):',
        f'#   {checkpoint}',
        f'_base_ = [{rel!r}]',
        f'load_from = {osp.abspath(checkpoint)!r}',
        f'data_preprocessor = dict(mean={[round(m, 6) for m in mean]!r}, '
        f'std={[round(s, 6) for s in std]!r})',
        'model = dict(',
        '    data_preprocessor=data_preprocessor,',
        f'    backbone={backbone!r},',
        f'    decode_head={overrides["decode_head"]!r})',
    ]
    if len(classes) != 2:
        lines.append(
            f'# {len(classes)} classes: this predicts the source\'s labels '
            f'(tools/infer.py); to train or test on car damage, fine-tune '
            f'a 2-class head (--cfg-options model.decode_head.num_classes=2)')
    return '\n'.join(lines) + '\n'


def hf_to_mmseg(hf_dir: str, out: str,
                config_out: Optional[str] = None) -> dict:
    """Convert a HF ``SegformerForSemanticSegmentation`` directory.

    Writes ``out`` (a checkpoint: ``state_dict`` and ``meta`` with
    ``dataset_meta`` and ``hf_source``: the source's config, model-card
    fields, licence and weights hash), the source's licence files as
    ``<out>.LICENSE*`` and, with ``config_out``, the config. Returns a
    summary (classes, parameter count, licence, files written). Raises
    :class:`ConversionError` / :class:`HFFilesError` naming what does not
    fit, ``FileExistsError`` rather than overwrite."""
    folder = resolve_hf_dir(hf_dir, local_files_only=True)
    hf_config = read_hf_json(folder)
    model_type = hf_config.get('model_type')
    if model_type != 'segformer':
        why = NOT_CONVERTED.get(model_type, 'not a SegFormer')
        raise ConversionError(f'{hf_dir}: model_type {model_type!r} is not '
                              f'converted: {why}')
    overrides = segformer_from_hf_config(hf_config)
    state = hf_to_mmseg_state(read_hf_state_dict(folder))
    processor = read_hf_json(folder, 'preprocessor_config.json',
                             required=False) or {}
    mean = [255.0 * m for m in processor.get('image_mean', HF_DEFAULT_MEAN)]
    std = [255.0 * s for s in processor.get('image_std', HF_DEFAULT_STD)]
    classes = classes_of(hf_config)
    card = read_model_card(folder)
    licences = license_files(folder)
    licence = card.get('license')
    licence_line = (f'{licence} ({card.get("license_name", "")} '
                    f'{card.get("license_link", "")})'.strip()
                    if licence else 'not stated by the source: check its '
                    'terms before use')
    for path in [out, config_out] + [
            _licence_copy(out, p) for p in licences]:
        if path:
            _refuse_existing(path)
    meta = dict(
        dataset_meta=dict(classes=tuple(classes),
                          palette=palette_for(classes)),
        hf_source=dict(
            path=osp.abspath(folder),
            config=hf_config,
            model_card={k: card[k] for k in CARD_FIELDS if k in card},
            license=licence or 'unknown',
            license_files=[osp.basename(p) for p in licences],
            weights_sha256={osp.basename(p): file_sha256(p)
                            for p in hf_weight_files(folder)},
            image_mean=mean, image_std=std,
            do_reduce_labels=bool(processor.get('do_reduce_labels', False)),
            converted_by=f'cardamage_mmseg {__version__}'))
    atomic_write(out, lambda tmp: torch.save(dict(state_dict=state,
                                                  meta=meta), tmp))
    written = [out]
    for path in licences:
        shutil.copyfile(path, _licence_copy(out, path))
        written.append(_licence_copy(out, path))
    if config_out:
        atomic_write_bytes(config_out, _config_text(
            _base_config_for(hf_config), config_out, out, overrides, mean,
            std, classes, hf_dir, licence_line).encode('utf-8'))
        written.append(config_out)
    return dict(classes=classes, params=sum(v.numel() for k, v in
                                            state.items()
                                            if not _is_buffer(k)),
                license=licence_line, written=written,
                reduce_labels=meta['hf_source']['do_reduce_labels'])


def _is_buffer(key: str) -> bool:
    return key.endswith(('running_mean', 'running_var',
                         'num_batches_tracked'))


def _licence_copy(out: str, licence: str) -> str:
    name = osp.basename(licence)
    return f'{out}.{name}'


def _derived_licence(cfg, meta: dict) -> dict:
    """Licence fields of weights trained here: those of a HF source they
    were converted from; NVIDIA's for MiT weights from NVIDIA (OpenMMLab's
    or HF's MiT/SegFormer files); else unknown."""
    source = meta.get('hf_source') or {}
    if source.get('license') and source['license'] != 'unknown':
        card = source.get('model_card', {})
        return {k: card[k] for k in ('license', 'license_name',
                                     'license_link') if k in card} or dict(
                                         license=source['license'])
    init = (cfg.model.get('backbone', {}).get('init_cfg') or {})
    checkpoint = str(init.get('checkpoint', '')) if isinstance(
        init, dict) else ''
    if 'mit_b' in checkpoint or 'nvidia/' in checkpoint:
        return dict(NVIDIA_SEGFORMER_LICENSE)
    return dict(license='unknown')


def _model_card(fields: dict, classes: Sequence[str], config: str,
                checkpoint_sha: str, metrics: Optional[dict],
                licence: dict, mean, std) -> str:
    front = dict(licence, library_name='transformers',
                 pipeline_tag='image-segmentation',
                 tags=['image-segmentation', 'segformer', 'car-damage',
                       'cardamage-mmseg'])
    text = ['---', yaml.safe_dump(front, sort_keys=False).strip(), '---',
            '', '# SegFormer car-damage segmentation (cardamage-mmseg)', '',
            'Semantic segmentation of damage on photos of cars, trained '
            'with cardamage-mmseg (MMSegmentation 1.x) and exported with '
            '`tools/model_converters/mmseg2hf.py`.', '',
            '## Classes', '']
    text += [f'- {i}: {c}' for i, c in enumerate(classes)]
    text += ['', '## Data', '',
             'Trained and evaluated with the config below; see the '
             'project\'s docs for the data sets (the bundled demo set is '
             '70 photos of car-damage-detector, MIT licence; the study\'s '
             'data is AI Hub "Vehicle Damage Image", under AI Hub\'s terms).',
             '', f'- config: `{osp.basename(config)}`',
             f'- checkpoint sha256: `{checkpoint_sha}`',
             f'- architecture: MiT depths {fields["depths"]}, hidden sizes '
             f'{fields["hidden_sizes"]}, decoder {fields["decoder_hidden_size"]}',
             f'- input: RGB, mean {[round(m, 4) for m in mean]}, std '
             f'{[round(s, 4) for s in std]} (0-1 scale, in '
             f'preprocessor_config.json)', '', '## Metrics', '']
    if metrics:
        text += ['| metric | value |', '|---|---|']
        text += [f'| {k} | {v} |' for k, v in metrics.items()]
    else:
        text += ['Not evaluated at export (pass `--metrics` with the JSON '
                 'that `tools/test.py` prints or writes).']
    text += ['', '## Licence', '']
    if licence.get('license_name') == 'nvidia-segformer':
        text += [NVIDIA_TERMS, '', f'Terms: {licence["license_link"]}']
    elif licence.get('license') == 'unknown':
        text += ['The licence of these weights was not recorded. State it '
                 '(`mmseg2hf.py --license`) before publishing.']
    else:
        text += [f'{licence.get("license")} '
                 f'{licence.get("license_link", "")}'.strip()]
    return '\n'.join(text) + '\n'


def mmseg_to_hf(config: str, checkpoint: str, out_dir: str,
                metrics: Optional[dict] = None,
                license: Optional[str] = None,
                verify: bool = True) -> dict:
    """Write a HF ``SegformerForSemanticSegmentation`` directory for a
    SegFormer with :class:`SegformerHFHead` trained here.

    ``out_dir`` must not exist. ``license``: an SPDX id that replaces the
    derived licence (see :func:`_derived_licence`). With ``verify``,
    transformers loads the written directory and its logits are compared
    with the mmseg model's on a random input (returned as ``max_diff``).
    """
    _refuse_existing(out_dir)
    cfg = load_config(config)
    model_cfg = cfg.model
    if model_cfg.get('type') != 'EncoderDecoder' or model_cfg.get(
            'auxiliary_head'):
        raise ConversionError(f'{config}: only a plain EncoderDecoder '
                              f'SegFormer (no auxiliary head) has a HF form')
    backbone = dict(model_cfg.backbone)
    if backbone.get('type') not in ('MixVisionTransformer',
                                    'MixVisionTransformerSDPA'):
        raise ConversionError(f'{config}: backbone {backbone.get("type")!r}'
                              f' is not a MiT')
    data_pre = model_cfg.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    if not data_pre.get('bgr_to_rgb', False):
        raise ConversionError(f'{config}: HF processors feed RGB; this '
                              f'config normalises BGR (bgr_to_rgb=False)')
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    classes = list(checkpoint_classes(cfg, ckpt) or [])
    fields = hf_config_from_mmseg(backbone, dict(model_cfg.decode_head),
                                  classes or None)
    classes = [fields['id2label'][str(i)] for i in range(len(
        fields['id2label']))]
    state = {k: v for k, v in state_dict_of(ckpt).items()
             if not k.startswith('data_preprocessor.')}
    hf_state = mmseg_to_hf_state(state)
    licence = (dict(license=license) if license else
               _derived_licence(cfg, meta))

    mean = [m / 255.0 for m in data_pre['mean']]
    std = [s / 255.0 for s in data_pre['std']]
    size = cfg.get('crop_size') or (512, 512)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    # a new name of our own (never a user's folder), created with the
    # umask's mode (mkdtemp's would be private), renamed when complete
    tmp = osp.join(parent, f'{TMP_PREFIX}{osp.basename(osp.abspath(out_dir))}'
                   f'-{uuid.uuid4().hex}')
    os.makedirs(tmp)
    try:
        _write_hf_dir(tmp, fields, hf_state, mean, std, size, meta,
                      checkpoint)
        with open(osp.join(tmp, 'README.md'), 'w', encoding='utf-8') as f:
            f.write(_model_card(fields, classes, config,
                                file_sha256(checkpoint), metrics, licence,
                                mean, std))
        result = dict(classes=classes, license=licence, params=sum(
            v.numel() for k, v in hf_state.items() if not _is_buffer(k)))
        if verify:
            result['max_diff'] = _verify_hf_dir(tmp, cfg, checkpoint)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result['out_dir'] = out_dir
    return result


def _write_hf_dir(folder: str, fields: dict, hf_state: dict, mean, std,
                  size, meta: dict, checkpoint: str) -> None:
    """config.json, preprocessor_config.json, model.safetensors (Hub
    layout) and the licence files that came with a converted source."""
    from safetensors.torch import save_file
    from transformers import SegformerConfig, SegformerImageProcessor
    SegformerConfig(**{k: v for k, v in fields.items()
                       if k != 'model_type'}).save_pretrained(folder)
    SegformerImageProcessor(
        image_mean=mean, image_std=std, do_reduce_labels=False,
        size=dict(height=int(size[0]), width=int(size[1]))).save_pretrained(
            folder)
    save_file({k: v.contiguous() for k, v in hf_state.items()},
              osp.join(folder, 'model.safetensors'),
              metadata={'format': 'pt'})
    for name in (meta.get('hf_source') or {}).get('license_files', []):
        source = f'{checkpoint}.{name}'
        if osp.isfile(source):
            shutil.copyfile(source, osp.join(folder, name))


def _verify_hf_dir(folder: str, cfg, checkpoint: str) -> float:
    """Max |logit difference| at 1/4 resolution between transformers'
    load of ``folder`` and the mmseg model (loaded strictly, as every
    frozen model), on one random normalised input (an export that does
    not compute the same fails here)."""
    from transformers import SegformerForSemanticSegmentation
    mm, _ = load_frozen_model(cfg, checkpoint)
    hf = SegformerForSemanticSegmentation.from_pretrained(
        folder, local_files_only=True).eval()
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = mm.decode_head(mm.extract_feat(x))
        theirs = hf(pixel_values=x).logits
    diff = float((ours - theirs).abs().max())
    if diff > 1e-4:
        raise ConversionError(f'the written model differs from the mmseg '
                              f'model by {diff:.3g} (> 1e-4) in logits')
    return diff


__all__ = ['ConversionError', 'HFFilesError', 'hf_to_mmseg', 'mmseg_to_hf',
           'read_model_card', 'license_files', 'classes_of']
