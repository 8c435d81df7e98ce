"""The HuggingFace bridge (issue 19): HF SegFormer checkpoints in
(hf2mmseg) and out (mmseg2hf) with <= 1e-4 logit difference on real
photos, HF MiT weights as init, and DPT-hybrid run from transformers inside
mmseg (HFSegmentor) through the standard tools. Small random HF models
built from configs, saved with save_pretrained: nothing is downloaded."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401  (registers; shim first)
from PIL import Image

from conftest import (DEMO, REPO, load_tool, run_tool,
                      write_tiny_config)

transformers = pytest.importorskip('transformers')
init_default_scope('mmseg')

#: a small SegFormer that mmseg's MiT can hold (hidden = 8 x heads)
TINY_SEGFORMER = dict(hidden_sizes=[8, 16, 40, 64],
                      num_attention_heads=[1, 2, 5, 8], depths=[1, 2, 1, 1],
                      decoder_hidden_size=32, num_labels=2,
                      id2label={0: 'background', 1: 'damage'},
                      label2id={'background': 0, 'damage': 1})
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
NVIDIA_CARD = ('---\nlicense: other\nlicense_name: nvidia-segformer\n'
               'license_link: https://github.com/NVlabs/SegFormer/blob/master/'
               'LICENSE\ntags:\n- vision\n---\n\n# a SegFormer\n')


def _randomise_batch_norm(model, seed=0):
    """Trained-looking BN statistics (fresh ones are 0/1: an identity that
    would hide a wrong BN mapping)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen)
                                + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen)
                                + 0.5)


@pytest.fixture(scope='module')
def hf_segformer(tmp_path_factory):
    """A random HF SegFormer saved as the Hub lays it out, with its image
    processor, a model card and a LICENSE file."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('hf') / 'segformer'
    model = transformers.SegformerForSemanticSegmentation(
        transformers.SegformerConfig(**TINY_SEGFORMER)).eval()
    _randomise_batch_norm(model)
    model.save_pretrained(folder)
    transformers.SegformerImageProcessor(
        image_mean=MEAN, image_std=STD).save_pretrained(folder)
    (folder / 'README.md').write_text(NVIDIA_CARD)
    (folder / 'LICENSE').write_text('NVIDIA Source Code License (test)\n')
    return str(folder), model


def _photo_batch(size, names=('1.jpg', '4.jpg')):
    """Real photos of the bundled sample, resized to ``size`` (w, h),
    normalised as HF's processor does: (B, 3, h, w) RGB."""
    arrays = [np.asarray(Image.open(osp.join(DEMO, 'val', n)).convert(
        'RGB').resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
        for n in names]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(
        STD)[:, None, None]


def _mm_model(config, checkpoint):
    from cardamage_mmseg.models.frozen import load_frozen_model
    model, classes = load_frozen_model(config, checkpoint)
    return model, classes


def _metas(x):
    shape = tuple(x.shape[-2:])
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape)
            for _ in range(x.shape[0])]


@pytest.fixture(scope='module')
def converted(hf_segformer, tmp_path_factory):
    from cardamage_mmseg.apis.hf import hf_to_mmseg
    folder = tmp_path_factory.mktemp('converted')
    ckpt, cfg = str(folder / 'tiny.pth'), str(folder / 'tiny.py')
    summary = hf_to_mmseg(hf_segformer[0], ckpt, cfg)
    return cfg, ckpt, summary


@pytest.mark.parametrize('size', [(256, 256), (320, 224)])
def test_converted_segformer_reproduces_hf_logits(hf_segformer, converted,
                                                  size):
    """Decode-head logits at 1/4 and after the same bilinear upsampling:
    <= 1e-4 on real photos, square and not."""
    _, hf = hf_segformer
    cfg, ckpt, _ = converted
    model, classes = _mm_model(cfg, ckpt)
    assert classes == ('background', 'damage')
    x = _photo_batch(size)
    with torch.no_grad():
        theirs = hf(pixel_values=x).logits
        ours = model.decode_head(model.extract_feat(x))
        full = model.encode_decode(x, _metas(x))
    assert ours.shape == theirs.shape == (2, 2, size[1] // 4, size[0] // 4)
    assert float((ours - theirs).abs().max()) <= 1e-4
    up = F.interpolate(theirs, size=x.shape[-2:], mode='bilinear',
                       align_corners=False)
    assert float((full - up).abs().max()) <= 1e-4
    # not trivially equal: the logits vary over the photo
    assert float(theirs.std()) > 1e-3


def test_converted_config_inherits_and_keeps_the_source(converted):
    from cardamage_mmseg.utils.checkpoint import load_checkpoint_file
    from cardamage_mmseg.utils.config import load_config
    cfg_path, ckpt, summary = converted
    text = open(cfg_path).read()
    assert '_base_' in text and 'segformer_hf_b3_cardamage.py' in text
    cfg = load_config(cfg_path)
    assert cfg.model.decode_head.type == 'SegformerHFHead'
    assert cfg.model.decode_head.channels == 32
    assert cfg.model.backbone.embed_dims == 8
    assert cfg.model.backbone.num_layers == [1, 2, 1, 1]
    assert cfg.model.data_preprocessor.mean == pytest.approx(
        [255 * m for m in MEAN], abs=1e-4)
    assert cfg.load_from == osp.abspath(ckpt)
    meta = load_checkpoint_file(ckpt)['meta']
    assert meta['hf_source']['license'] == 'other'
    assert meta['hf_source']['model_card']['license_name'] == \
        'nvidia-segformer'
    assert osp.isfile(ckpt + '.LICENSE')
    assert 'nvidia-segformer' in summary['license']


def test_round_trip_back_to_hf_is_exact(hf_segformer, converted, tmp_path):
    """mmseg2hf of the converted model: transformers loads the directory
    and computes HF's logits; licence and card travel with it."""
    folder, hf = hf_segformer
    cfg, ckpt, _ = converted
    tool = load_tool('tools/model_converters/mmseg2hf.py')
    from cardamage_mmseg.cli.main import run
    out = str(tmp_path / 'back')
    metrics = tmp_path / 'm.json'
    metrics.write_text(json.dumps({'mIoU': 51.2, 'aAcc': 93.0}))
    assert run(tool.main, [cfg, ckpt, out, '--metrics', str(metrics)]) == 0
    back = transformers.SegformerForSemanticSegmentation.from_pretrained(
        out, local_files_only=True).eval()
    x = _photo_batch((256, 192))
    with torch.no_grad():
        assert float((back(pixel_values=x).logits -
                      hf(pixel_values=x).logits).abs().max()) <= 1e-6
    config = json.load(open(osp.join(out, 'config.json')))
    assert config['id2label'] == {'0': 'background', '1': 'damage'}
    proc = transformers.SegformerImageProcessor.from_pretrained(out)
    assert proc.image_mean == pytest.approx(MEAN)
    card = open(osp.join(out, 'README.md')).read()
    assert 'license_name: nvidia-segformer' in card
    assert 'non-commercially' in card and '| mIoU | 51.2 |' in card
    assert osp.isfile(osp.join(out, 'LICENSE'))
    # nothing is overwritten
    assert run(tool.main, [cfg, ckpt, out]) == 2


def test_mmseg2hf_of_a_model_trained_here(tmp_path):
    """A SegformerHFHead b0 (random weights as if trained here): the HF
    directory gives the same logits on real photos (<= 1e-4), and its card
    carries NVIDIA's licence (the config starts from NVIDIA's MiT-b0)."""
    from mmseg.registry import MODELS

    from cardamage_mmseg.apis.hf import mmseg_to_hf
    from cardamage_mmseg.utils.config import load_config
    config = osp.join(REPO, 'configs', 'segformer_hf_b0_cardamage.py')
    cfg = load_config(config)
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None
    model_cfg.decode_head.norm_cfg = dict(type='BN')
    torch.manual_seed(1)
    model = MODELS.build(model_cfg).eval()
    _randomise_batch_norm(model, seed=1)
    ckpt = str(tmp_path / 'b0.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(
        classes=('background', 'damage')))), ckpt)
    result = mmseg_to_hf(config, ckpt, str(tmp_path / 'hf'))
    assert result['max_diff'] <= 1e-4
    hf = transformers.SegformerForSemanticSegmentation.from_pretrained(
        str(tmp_path / 'hf'), local_files_only=True).eval()
    x = _photo_batch((256, 256))
    with torch.no_grad():
        diff = (model.decode_head(model.extract_feat(x)) -
                hf(pixel_values=x).logits).abs().max()
    assert float(diff) <= 1e-4
    card = open(tmp_path / 'hf' / 'README.md').read()
    assert 'license_name: nvidia-segformer' in card
    assert 'Not evaluated' in card


def test_clear_errors(hf_segformer, converted, tmp_path):
    from cardamage_mmseg.apis.hf import hf_to_mmseg, mmseg_to_hf
    from cardamage_mmseg.models.converters import (ConversionError,
                                                   mit_from_hf_config)
    from cardamage_mmseg.utils.hf_files import HFFilesError
    folder, _ = hf_segformer
    cfg, ckpt, _ = converted
    with pytest.raises(FileExistsError, match='not overwriting'):
        hf_to_mmseg(folder, ckpt)
    with pytest.raises(HFFilesError, match='not a HF model directory'):
        hf_to_mmseg(str(tmp_path / 'nope'), str(tmp_path / 'x.pth'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(HFFilesError, match='no config.json'):
        hf_to_mmseg(str(empty), str(tmp_path / 'x.pth'))
    (empty / 'config.json').write_text(json.dumps({'model_type': 'dpt'}))
    with pytest.raises(ConversionError, match='HFSegmentor'):
        hf_to_mmseg(str(empty), str(tmp_path / 'x.pth'))
    with pytest.raises(ConversionError, match='embed_dims x num_attention'):
        mit_from_hf_config(dict(hidden_sizes=[8, 16, 40, 60],
                                num_attention_heads=[1, 2, 5, 8],
                                depths=[1, 1, 1, 1]))
    with pytest.raises(ConversionError, match='SegformerHFHead'):
        mmseg_to_hf(osp.join(REPO, 'configs', 'segformer_b0_cardamage.py'),
                    ckpt, str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()
    # the CLI reports it as a message, exit code 2
    res = run_tool('tools/model_converters/hf2mmseg.py', str(empty),
                   str(tmp_path / 'y.pth'))
    assert res.returncode == 2 and 'HFSegmentor' in res.stderr, res.stderr
    assert 'Traceback' not in res.stderr


def test_pickled_bin_goes_through_the_safe_loader(hf_segformer, tmp_path):
    """An old-style pytorch_model.bin converts; one that pickles code is
    refused without running it."""
    from cardamage_mmseg.apis.hf import hf_to_mmseg
    from cardamage_mmseg.utils.checkpoint import UnsafeCheckpointError
    folder, hf = hf_segformer
    old = tmp_path / 'old'
    old.mkdir()
    for name in ('config.json', 'preprocessor_config.json'):
        (old / name).write_text(open(osp.join(folder, name)).read())
    from safetensors.torch import load_file
    torch.save(load_file(osp.join(folder, 'model.safetensors')),
               old / 'pytorch_model.bin')
    summary = hf_to_mmseg(str(old), str(tmp_path / 'old.pth'))
    assert summary['license'].startswith('not stated')

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / 'pwned'), 'w'))

    torch.save({'x': Evil()}, old / 'pytorch_model.bin')
    with pytest.raises(UnsafeCheckpointError):
        hf_to_mmseg(str(old), str(tmp_path / 'evil.pth'))
    assert not (tmp_path / 'pwned').exists()


def test_hf_mit_encoder_as_init(tmp_path):
    """init_cfg=dict(type='HFPretrained') fills a MiT backbone from a HF
    MiT encoder saved as nvidia/mit-b* is (an image classifier): stage
    features equal HF's hidden states."""
    from mmseg.registry import MODELS
    from cardamage_mmseg.models.converters import mit_from_hf_config
    torch.manual_seed(2)
    config = transformers.SegformerConfig(**TINY_SEGFORMER)
    hf = transformers.SegformerForImageClassification(config).eval()
    hf.save_pretrained(tmp_path / 'mit')
    arch = mit_from_hf_config(config.to_dict())
    backbone = MODELS.build(dict(
        arch, type='MixVisionTransformerSDPA',
        init_cfg=dict(type='HFPretrained', checkpoint=str(tmp_path / 'mit'))))
    backbone.init_weights()
    backbone.eval()
    x = _photo_batch((128, 128))
    with torch.no_grad():
        ours = backbone(x)
        theirs = hf.segformer(x, output_hidden_states=True).hidden_states
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        assert float((a - b).abs().max()) <= 1e-4
    # a Hub id not in the local cache: a clear error, no download
    from cardamage_mmseg.utils.hf_files import HFFilesError
    bad = MODELS.build(dict(arch, type='MixVisionTransformerSDPA',
                            init_cfg=dict(type='HFPretrained',
                                          checkpoint='nvidia/mit-b99')))
    with pytest.raises(HFFilesError, match='local HF cache'):
        bad.init_weights()


@pytest.mark.slow
def test_converted_model_runs_through_the_tools(converted, demo_converted,
                                                val_photos, tmp_path):
    """A converted HF model is a model of this project: tools/test.py on
    the real sample, tools/infer.py and tools/export.py (ONNX, verified
    against PyTorch on real photos)."""
    pytest.importorskip('onnx')
    from cardamage_mmseg.cli.main import run
    cfg, ckpt, _ = converted
    tiny = write_tiny_config(tmp_path, cfg, demo_converted, test_images=2)
    work = str(tmp_path / 'test')
    res = run_tool('tools/test.py', tiny, ckpt, '--work-dir', work)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.load(open(sorted(glob.glob(osp.join(work, '*',
                                                       '*.json')))[-1]))
    assert 'IoU.damage' in metrics
    out = str(tmp_path / 'infer')
    infer = load_tool('tools/infer.py')
    assert run(infer.main, [cfg, ckpt, str(val_photos), '--out', out]) == 0
    assert len(json.load(open(osp.join(out, 'report.json')))) == 4
    export = load_tool('tools/export.py')
    onnx_path = str(tmp_path / 'converted.onnx')
    assert run(export.main, [cfg, ckpt, '--out', onnx_path, '--verify-dir',
                             str(val_photos)]) == 0
    assert osp.isfile(onnx_path)


def test_converters_never_touch_a_users_part_files(hf_segformer, converted,
                                                   tmp_path):
    """The temporary files are the project's own names: a user's
    ``OUT.part`` / ``OUT_DIR.part`` stay as they were, and nothing
    temporary is left behind."""
    from cardamage_mmseg.apis.hf import hf_to_mmseg, mmseg_to_hf
    folder, _ = hf_segformer
    cfg, ckpt, _ = converted
    (tmp_path / 'b.pth.part').write_text('mine')
    hf_to_mmseg(folder, str(tmp_path / 'b.pth'))
    assert (tmp_path / 'b.pth.part').read_text() == 'mine'
    (tmp_path / 'hf.part').mkdir()
    (tmp_path / 'hf.part' / 'notes.txt').write_text('mine')
    mmseg_to_hf(cfg, ckpt, str(tmp_path / 'hf'))
    assert (tmp_path / 'hf.part' / 'notes.txt').read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'b.pth', 'b.pth.LICENSE', 'b.pth.part', 'hf', 'hf.part']
