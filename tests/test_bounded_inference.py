"""Inference with bounded memory: the model-size log-probabilities are
upsampled to the photo band by band (core.upsample), elongated photos go
through the model in windows (core.tiles), big photos are refused by the
pixel limit before decoding. The masks must stay mmseg's masks."""
import os
import os.path as osp
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cardamage_mmseg.apis import DamageSegmenter
from cardamage_mmseg.core import ImageReadError, load_rgb, read_image_rgb
from cardamage_mmseg.core.tiles import aspect_windows, stitch
from cardamage_mmseg.core.upsample import upsample_to_mask
from conftest import DEMO, write_ensemble_config


def _reference(logits: torch.Tensor, h: int, w: int):
    up = F.interpolate(logits[None], size=(h, w), mode='bilinear',
                       align_corners=False)[0]
    probs = up.softmax(dim=0)
    return probs.numpy(), probs.argmax(dim=0).numpy()


@pytest.mark.parametrize('size,out', [((7, 9), (100, 61)),
                                      ((64, 48), (1000, 750)),
                                      ((30, 40), (30, 40)),
                                      ((50, 50), (20, 33))])
def test_band_upsampling_is_torch_bilinear_then_softmax(size, out):
    torch.manual_seed(0)
    logits = torch.randn(3, *size) * 3
    probs, labels = _reference(logits, *out)
    got = upsample_to_mask(F.log_softmax(logits, 0)[None].numpy(), *out,
                           full_probs=True)
    assert np.abs(got['probs'] - probs).max() < 1e-4  # float rounding
    assert (got['mask'] == labels).mean() > 0.9999
    fast = upsample_to_mask(F.log_softmax(logits[:2], 0)[None].numpy(),
                            *out)  # two classes: the difference only
    two = _reference(logits[:2], *out)[1]
    assert (fast['mask'] == two).mean() > 0.9999
    # confidence: at the model's resolution
    model_probs = logits.softmax(0).numpy()
    conf = model_probs.max(0)
    assert got['mean_confidence'] == pytest.approx(conf.mean(), abs=1e-5)
    assert got['damage_confidence'] == pytest.approx(
        conf[model_probs.argmax(0) != 0].mean(), abs=1e-5)


def test_sign_upsampling_is_the_same_whatever_its_bands(monkeypatch):
    """Two classes: the mask of the sign path does not depend on how its
    rows are cut into bands (one row, a ragged 7-pixel band, the default)
    and is torch's bilinear argmax."""
    from cardamage_mmseg.core import upsample
    torch.manual_seed(1)
    logits = torch.randn(2, 48, 64) * 3
    log_probs = F.log_softmax(logits, 0)[None].numpy()
    masks = []
    for band in (1, 7, 333, upsample.SIGN_BAND_PIXELS):
        monkeypatch.setattr(upsample, 'SIGN_BAND_PIXELS', band)
        got = upsample_to_mask(log_probs, 750, 1000)
        assert got['windows']  # the sign path ran
        masks.append(got['mask'])
    assert all((m == masks[0]).all() for m in masks[1:])
    assert (masks[0] == _reference(logits, 750, 1000)[1]).mean() > 0.9999


def test_band_upsampling_holds_no_full_size_float_map():
    """4000 x 3000 from 64 x 48: the old path held 2 x 12 M floats of
    probabilities (96 MB) and as many again for the softmax."""
    log_probs = np.log(np.full((1, 2, 48, 64), 0.5, np.float32))
    tracemalloc.start()
    got = upsample_to_mask(log_probs, 3000, 4000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got['mask'].shape == (3000, 4000) and got['probs'] is None
    assert peak < 12e6 + 60e6  # the uint8 mask + bands of 2 M pixels


def test_aspect_windows_cover_the_photo_with_overlap():
    assert aspect_windows(300, 400) == [(0, 300, 0, 400)]
    wins = aspect_windows(220, 4000)
    assert all(y0 == 0 and y1 == 220 and x1 - x0 == 880
               for y0, y1, x0, x1 in wins)
    assert wins[0][2] == 0 and wins[-1][3] == 4000
    assert all(b[2] < a[3] for a, b in zip(wins, wins[1:]))  # overlap
    tall = aspect_windows(5000, 100)
    assert tall[-1][:2] == (4600, 5000) and tall[0][2:] == (0, 100)
    # windows of a constant map stitch to that map, covering the canvas
    parts = [np.full((1, 2, 16, 64), 3.0, np.float32) for _ in wins]
    canvas = stitch(parts, wins, 220, 4000)
    assert canvas.shape == (1, 2, 16, 291) and np.allclose(canvas, 3.0)


@pytest.fixture(scope='module')
def photos():
    names = sorted(f for f in os.listdir(osp.join(DEMO, 'val'))
                   if f.endswith('.jpg'))[:3]
    return [osp.join(DEMO, 'val', n) for n in names]


def _old_path_masks(seg, paths):
    """mmseg's way (the code before bounded inference): probabilities at
    the original size, then argmax."""
    from cardamage_mmseg.models.segmentors.probs import predict_probs
    masks = []
    for path in paths:
        rgb = read_image_rgb(path)
        inputs, sample = seg._prepare(rgb, path)
        if seg.is_ensemble:
            probs = seg.model.member_probs([inputs], [sample])
            masks.append(seg.model.fuse_batch(probs)[0][1].numpy())
        else:
            probs = predict_probs(seg.model, [inputs], [sample], 'cpu',
                                  flip=seg.tta)
            masks.append(probs[0].argmax(0).numpy())
    return masks


@pytest.mark.parametrize('kind', ['single', 'tta', 'union', 'mean'])
def test_masks_are_the_original_size_argmax(members, photos, tmp_path,
                                            kind):
    cfg, ckpt = members['b0']
    if kind in ('union', 'mean'):
        cfg = write_ensemble_config(tmp_path / 'ens.py', [
            members['b0'], members['mvit']], fusion=kind)
        ckpt = None
    seg = DamageSegmenter(cfg, ckpt, tta=kind == 'tta')
    for result, old in zip(seg(photos), _old_path_masks(seg, photos)):
        assert result.mask.shape == old.shape
        assert (result.mask == old).mean() > 0.999


def test_elongated_photo_is_segmented_in_windows(members, photos):
    """A 4000 x 220 photo resized for the 64-pixel test model is 4 pixels
    high: the MiT backbone failed on it ("Kernel size can't be greater
    than actual input size") and took the whole run down."""
    cfg, ckpt = members['b0']
    seg = DamageSegmenter(cfg, ckpt)
    strip = np.array(Image.open(photos[0]).convert('RGB').resize((4000,
                                                                  220)))
    [result] = seg(strip)
    assert result.mask.shape == (220, 4000)
    assert result.report['width'] == 4000
    [tall] = seg(np.ascontiguousarray(strip.transpose(1, 0, 2)))
    assert tall.mask.shape == (4000, 220)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    path = tmp_path / 'zeros.png'
    Image.new('L', (10000, 10000)).save(path)  # 97 KB, 100 MP
    tracemalloc.start()
    with pytest.raises(ImageReadError, match=r'zeros.png.*100\.0 MP.*'
                       r'limit of 50 MP'):
        read_image_rgb(str(path), max_pixels=50_000_000)
    assert tracemalloc.get_traced_memory()[1] < 10e6
    tracemalloc.stop()
    with pytest.raises(ImageReadError, match='array 0'):
        load_rgb(np.zeros((300, 400), np.uint8), 0, max_pixels=100_000)


def test_reduced_reading_decodes_only_what_is_needed(tmp_path):
    """A 12 MP JPEG turned by EXIF is decoded at a quarter of its size
    (DCT scaling) when the caller needs 500 x 500; the reported size is
    the whole photo's, upright."""
    from cardamage_mmseg.core.image import read_reduced
    src = Image.open(osp.join(DEMO, 'val', '1.jpg')).convert('RGB')
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    path = tmp_path / 'big.jpg'
    src.resize((4032, 3024)).save(path, exif=exif, quality=90)
    asked = []
    rgb, size = read_reduced(str(path), lambda w, h: asked.append(
        (w, h)) or (500, 500))
    assert asked == [(3024, 4032)] and size == (4032, 3024)
    assert rgb.shape == (1008, 756, 3)
    full = read_image_rgb(str(path))
    assert full.shape == (4032, 3024, 3)
    small = np.asarray(Image.fromarray(full).resize((756, 1008),
                                                    Image.Resampling.BOX))
    assert np.abs(small.astype(int) - rgb).mean() < 3  # the same picture
    png = tmp_path / 'big.png'
    src.save(png)
    rgb, size = read_reduced(str(png), lambda w, h: (10, 10))
    assert rgb.shape[:2] == size == (1024, 1024)  # not a JPEG: whole
