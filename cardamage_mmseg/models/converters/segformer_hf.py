"""HuggingFace SegFormer <-> mmseg SegFormer (MiT backbone +
:class:`~..decode_heads.SegformerHFHead`): state dicts and configs.

HF's checkpoint layout (what ``save_pretrained`` writes and the Hub holds:
``segformer.encoder.block.{i}.{j}...``, ``decode_head.linear_c...``) maps one
to one onto mmseg's :class:`~mmseg.models.backbones.MixVisionTransformer`
(``backbone.layers.{i}...``) and the HF-structured head, with two changes of
form: HF's separate ``query/key/value`` linears are the rows of
``nn.MultiheadAttention``'s ``in_proj`` (``[q; k; v]``), and the Mix-FFN's
``dense1/dense2`` linears are 1x1 convolutions here (``W[:, :, None, None]``).
Nothing else is touched, so a round trip is exact. HF's LayerNorms use
PyTorch's default ``eps=1e-5`` (its config's ``layer_norm_eps`` is not read
by the model), mmseg's MiT defaults to 1e-6: converted configs set 1e-5.
"""
import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

#: (HF template, mmseg template, kind) for the parameters of one module;
#: ``{i}`` stage, ``{j}`` block; kind 'conv1x1': HF Linear <-> 1x1 conv
_BACKBONE_RULES = [
    ('encoder.patch_embeddings.{i}.proj.', 'layers.{i}.0.projection.', ''),
    ('encoder.patch_embeddings.{i}.layer_norm.', 'layers.{i}.0.norm.', ''),
    ('encoder.block.{i}.{j}.layer_norm_1.', 'layers.{i}.1.{j}.norm1.', ''),
    ('encoder.block.{i}.{j}.layer_norm_2.', 'layers.{i}.1.{j}.norm2.', ''),
    ('encoder.block.{i}.{j}.attention.self.sr.', 'layers.{i}.1.{j}.attn.sr.',
     ''),
    ('encoder.block.{i}.{j}.attention.self.layer_norm.',
     'layers.{i}.1.{j}.attn.norm.', ''),
    ('encoder.block.{i}.{j}.attention.output.dense.',
     'layers.{i}.1.{j}.attn.attn.out_proj.', ''),
    ('encoder.block.{i}.{j}.mlp.dense1.', 'layers.{i}.1.{j}.ffn.layers.0.',
     'conv1x1'),
    ('encoder.block.{i}.{j}.mlp.dwconv.dwconv.',
     'layers.{i}.1.{j}.ffn.layers.1.', ''),
    ('encoder.block.{i}.{j}.mlp.dense2.', 'layers.{i}.1.{j}.ffn.layers.4.',
     'conv1x1'),
    ('encoder.layer_norm.{i}.', 'layers.{i}.2.', ''),
]
_HEAD_RULES = [
    ('linear_c.{i}.proj.', 'linear_c.{i}.proj.', ''),
    ('linear_fuse.', 'linear_fuse.', ''),
    ('batch_norm.', 'batch_norm.', ''),
    ('classifier.', 'conv_seg.', ''),
]
_QKV = ('query', 'key', 'value')
_HF_QKV = re.compile(
    r'encoder\.block\.(\d+)\.(\d+)\.attention\.self\.(query|key|value)\.'
    r'(weight|bias)$')
_MM_QKV = re.compile(r'layers\.(\d+)\.1\.(\d+)\.attn\.attn\.in_proj_'
                     r'(weight|bias)$')


class ConversionError(ValueError):
    """A checkpoint or config that does not fit the other layout; the
    message names what does not fit."""


def _regex(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r'\{i\}', r'(?P<i>\d+)')
    return re.compile(pattern.replace(r'\{j\}', r'(?P<j>\d+)'))


def _rules(rules, prefix_from: str, prefix_to: str, forward: bool):
    out = []
    for hf, mm, kind in rules:
        src, dst = (hf, mm) if forward else (mm, hf)
        out.append((_regex(prefix_from + src), prefix_to + dst, kind))
    return out


def _apply(state: Mapping[str, Tensor], rules, forward: bool
           ) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename by ``rules``; returns the renamed tensors and the keys no
    rule matched."""
    out, left = {}, []
    for key, value in state.items():
        for regex, target, kind in rules:
            match = regex.match(key)
            if match:
                new = target.format(**match.groupdict()) + key[match.end():]
                if kind == 'conv1x1' and key.endswith('weight'):
                    value = (value[:, :, None, None] if forward else
                             value.reshape(value.shape[:2]))
                out[new] = value
                break
        else:
            left.append(key)
    return out, left


def hf_to_mmseg_state(hf_state: Mapping[str, Tensor],
                      with_head: bool = True) -> Dict[str, Tensor]:
    """mmseg state dict (``backbone.*``, ``decode_head.*``) of a HF
    ``SegformerForSemanticSegmentation`` state dict in the Hub layout; with
    ``with_head=False`` a MiT encoder (``SegformerModel`` or
    ``...ForImageClassification``, as ``nvidia/mit-b*``) gives the
    ``backbone.*`` part (an image classifier's ``classifier.*`` is
    dropped). Raises :class:`ConversionError` naming keys that fit no
    rule."""
    state = {}
    for key, value in hf_state.items():
        key = key[len('segformer.'):] if key.startswith('segformer.') else key
        state[key] = value
    if any(k.startswith('stages.') for k in state):
        raise ConversionError(
            'this state dict has transformers 5\'s in-memory names '
            '(stages.*): save the model with save_pretrained(), which writes '
            'the Hub layout (encoder.block.*)')
    qkv: Dict[Tuple[str, str, str], Dict[str, Tensor]] = {}
    rest = {}
    for key, value in state.items():
        match = _HF_QKV.match(key)
        if match:
            i, j, part, kind = match.groups()
            qkv.setdefault((i, j, kind), {})[part] = value
        else:
            rest[key] = value
    out = {}
    for (i, j, kind), parts in qkv.items():
        if set(parts) != set(_QKV):
            raise ConversionError(f'block {i}.{j}: attention {kind} has '
                                  f'only {sorted(parts)}')
        out[f'backbone.layers.{i}.1.{j}.attn.attn.in_proj_{kind}'] = \
            torch.cat([parts[p] for p in _QKV])
    rules = _rules(_BACKBONE_RULES, '', 'backbone.', True)
    if with_head:
        rules += _rules(_HEAD_RULES, 'decode_head.', 'decode_head.', True)
    renamed, left = _apply(rest, rules, True)
    out.update(renamed)
    if not with_head:
        left = [k for k in left if not k.startswith(('classifier.',
                                                     'decode_head.'))]
    if left:
        raise ConversionError(f'{len(left)} HF key(s) fit no SegFormer '
                              f'parameter: {", ".join(sorted(left)[:8])}')
    return out


def mmseg_to_hf_state(mm_state: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """The inverse of :func:`hf_to_mmseg_state` (Hub layout, with the
    ``segformer.`` prefix). Raises :class:`ConversionError` for keys of
    other modules (an mmseg ``SegformerHead``, an auxiliary head)."""
    out, rest = {}, {}
    for key, value in mm_state.items():
        match = _MM_QKV.match(key[len('backbone.'):])
        if key.startswith('backbone.') and match:
            i, j, kind = match.groups()
            for part, chunk in zip(_QKV, value.chunk(3)):
                out[f'segformer.encoder.block.{i}.{j}.attention.self.'
                    f'{part}.{kind}'] = chunk.clone()
        else:
            rest[key] = value
    rules = (_rules(_BACKBONE_RULES, 'backbone.', 'segformer.', False) +
             _rules(_HEAD_RULES, 'decode_head.', 'decode_head.', False))
    renamed, left = _apply(rest, rules, False)
    if left:
        raise ConversionError(
            f'{len(left)} key(s) have no place in HF SegFormer (a model '
            f'with mmseg\'s SegformerHead or an auxiliary head cannot be '
            f'exported; train with SegformerHFHead): '
            f'{", ".join(sorted(left)[:8])}')
    out.update(renamed)
    return out


def _hf_get(hf_config: Mapping, key: str, default=None):
    value = hf_config.get(key, default)
    if value is None:
        raise ConversionError(f'HF config has no {key!r}')
    return value


def mit_from_hf_config(hf_config: Mapping) -> dict:
    """mmseg ``MixVisionTransformer`` arguments of a HF SegFormer/MiT
    config (``config.json`` as a dict). mmseg's MiT ties each stage's
    width to ``embed_dims * num_heads[i]`` and has one ``mlp_ratio``: other
    configs raise :class:`ConversionError` saying which field."""
    hidden = list(_hf_get(hf_config, 'hidden_sizes'))
    heads = list(_hf_get(hf_config, 'num_attention_heads'))
    stages = int(hf_config.get('num_encoder_blocks', len(hidden)))
    embed_dims = hidden[0] // heads[0]
    if [embed_dims * h for h in heads] != hidden:
        raise ConversionError(
            f'hidden_sizes {hidden} are not embed_dims x num_attention_heads '
            f'{heads}: mmseg\'s MixVisionTransformer cannot hold them')
    ratios = set(hf_config.get('mlp_ratios', [4] * stages))
    if len(ratios) != 1:
        raise ConversionError(f'mlp_ratios {sorted(ratios)} differ per '
                              f'stage; mmseg\'s MiT has one mlp_ratio')
    if hf_config.get('hidden_act', 'gelu') != 'gelu':
        raise ConversionError(f'hidden_act {hf_config["hidden_act"]!r}: '
                              f'mmseg\'s MiT uses GELU')
    if hf_config.get('reshape_last_stage', True) is False:
        raise ConversionError('reshape_last_stage=False is not supported')
    return dict(
        in_channels=int(hf_config.get('num_channels', 3)),
        embed_dims=embed_dims,
        num_stages=stages,
        num_layers=list(_hf_get(hf_config, 'depths')),
        num_heads=heads,
        patch_sizes=list(hf_config.get('patch_sizes', [7, 3, 3, 3])),
        strides=list(hf_config.get('strides', [4, 2, 2, 2])),
        sr_ratios=list(hf_config.get('sr_ratios', [8, 4, 2, 1])),
        out_indices=tuple(range(stages)),
        mlp_ratio=ratios.pop(),
        qkv_bias=True,
        drop_rate=float(hf_config.get('hidden_dropout_prob', 0.0)),
        attn_drop_rate=float(
            hf_config.get('attention_probs_dropout_prob', 0.0)),
        drop_path_rate=float(hf_config.get('drop_path_rate', 0.1)),
        norm_cfg=dict(type='LN', eps=1e-5))


def segformer_from_hf_config(hf_config: Mapping) -> dict:
    """``dict(backbone=..., decode_head=...)`` overrides of an mmseg
    SegFormer config for a HF ``SegformerForSemanticSegmentation`` config
    (the backbone's ``type`` is left to the base config)."""
    backbone = mit_from_hf_config(hf_config)
    hidden = list(hf_config['hidden_sizes'])
    num_labels = len(hf_config.get('id2label') or {}) or int(
        hf_config.get('num_labels', 2))
    head = dict(
        type='SegformerHFHead',
        in_channels=hidden,
        in_index=list(range(len(hidden))),
        channels=int(hf_config.get('decoder_hidden_size', 256)),
        dropout_ratio=float(hf_config.get('classifier_dropout_prob', 0.1)),
        num_classes=num_labels,
        align_corners=False)
    return dict(backbone=backbone, decode_head=head)


def hf_config_from_mmseg(backbone: Mapping, decode_head: Mapping,
                         classes: Optional[List[str]] = None) -> dict:
    """The fields of a HF ``SegformerConfig`` (``model_type='segformer'``)
    for an mmseg MiT backbone config and a :class:`SegformerHFHead`
    config; ``classes`` name the labels (``id2label``)."""
    if decode_head.get('type') != 'SegformerHFHead':
        raise ConversionError(
            f'decode head {decode_head.get("type")!r}: only SegformerHFHead '
            f'has HF\'s structure (mmseg\'s SegformerHead does not)')
    eps = dict(backbone.get('norm_cfg') or {}).get('eps', 1e-6)
    if abs(eps - 1e-5) > 1e-12:
        raise ConversionError(
            f'the backbone\'s LayerNorm eps is {eps}; HF SegFormer computes '
            f'with 1e-5 (set model.backbone.norm_cfg=dict(type="LN", '
            f'eps=1e-5), as the segformer_hf configs do)')
    heads = list(backbone.get('num_heads', [1, 2, 5, 8]))
    stages = int(backbone.get('num_stages', 4))
    embed = int(backbone.get('embed_dims', 32))
    num_classes = int(decode_head['num_classes'])
    classes = list(classes or [str(i) for i in range(num_classes)])
    if len(classes) != num_classes:
        raise ConversionError(f'{len(classes)} class names for a head of '
                              f'{num_classes} classes')
    return dict(
        model_type='segformer',
        architectures=['SegformerForSemanticSegmentation'],
        num_channels=int(backbone.get('in_channels', 3)),
        num_encoder_blocks=stages,
        depths=list(backbone.get('num_layers', [3, 4, 6, 3])),
        sr_ratios=list(backbone.get('sr_ratios', [8, 4, 2, 1])),
        hidden_sizes=[embed * h for h in heads],
        patch_sizes=list(backbone.get('patch_sizes', [7, 3, 3, 3])),
        strides=list(backbone.get('strides', [4, 2, 2, 2])),
        num_attention_heads=heads,
        mlp_ratios=[int(backbone.get('mlp_ratio', 4))] * stages,
        hidden_act='gelu',
        hidden_dropout_prob=float(backbone.get('drop_rate', 0.0)),
        attention_probs_dropout_prob=float(
            backbone.get('attn_drop_rate', 0.0)),
        classifier_dropout_prob=float(decode_head.get('dropout_ratio', 0.1)),
        drop_path_rate=float(backbone.get('drop_path_rate', 0.1)),
        decoder_hidden_size=int(decode_head['channels']),
        semantic_loss_ignore_index=int(decode_head.get('ignore_index', 255)),
        id2label={str(i): c for i, c in enumerate(classes)},
        label2id={c: i for i, c in enumerate(classes)})
