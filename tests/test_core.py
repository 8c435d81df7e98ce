"""The torch-free core against what it stands in for: mmcv's resizing,
the checks and palettes the datasets used, and input discovery."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.core import (AIHUB_PALETTE, BINARY_PALETTE, InputError,
                                  collect_inputs, holds_damage_ids,
                                  out_of_range_values, pad_to, palette_for,
                                  read_image_rgb, rescale_size,
                                  resize_for_model, save_mask)
from conftest import DEMO


@pytest.mark.parametrize('scale', [(512, 512), (2048, 512), (256, 320)])
def test_resize_for_model_is_mmcv_resize(scale):
    """Same size and identical pixels as the test pipelines' mmcv Resize
    (keep_ratio=True), on a real photo and on thin/odd shapes."""
    import mmcv
    from mmcv.transforms import Resize
    photo = read_image_rgb(osp.join(DEMO, 'val', '1.jpg'))
    rng = np.random.default_rng(0)
    for img in (photo, rng.integers(0, 255, (37, 901, 3), dtype=np.uint8),
                rng.integers(0, 255, (640, 17, 3), dtype=np.uint8)):
        ours = resize_for_model(img, scale)
        theirs = Resize(scale=scale, keep_ratio=True)(dict(img=img))['img']
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)
        h, w = img.shape[:2]
        assert rescale_size(w, h, scale) == mmcv.rescale_size((w, h), scale)


def test_pad_to_pads_bottom_right():
    img = np.ones((3, 4, 3), np.uint8)
    out = pad_to(img, 5, 6, value=7)
    assert out.shape == (5, 6, 3)
    assert (out[:3, :4] == 1).all() and (out[3:] == 7).all() \
        and (out[:, 4:] == 7).all()
    assert pad_to(img, 3, 4) is img
    with pytest.raises(ValueError, match='larger'):
        pad_to(img, 2, 4)


def test_mask_value_rules():
    values = np.array([0, 1, 2, 255])
    assert out_of_range_values(values, 2).tolist() == [2]
    assert out_of_range_values(values, 3).tolist() == []
    assert out_of_range_values(np.array([-1, 0]), 2).tolist() == [-1]
    assert holds_damage_ids(np.array([0, 1]), 2)
    assert not holds_damage_ids(np.array([0, 255]), 2)


def test_palettes():
    assert palette_for(('background', 'damage')) == BINARY_PALETTE
    assert palette_for(('background', 'scratched', 'separated', 'crushed',
                        'breakage')) == AIHUB_PALETTE
    other = palette_for(('bg', 'a', 'b'))
    assert other[0] == [0, 0, 0] and len(other) == 3
    assert palette_for(('bg', 'a', 'b')) == other  # fixed seed


def test_save_mask_keeps_class_ids(tmp_path):
    mask = np.array([[0, 1], [4, 255]], np.uint8)
    save_mask(mask, str(tmp_path / 'm.png'))
    img = Image.open(tmp_path / 'm.png')
    assert img.mode == 'P' and np.array_equal(np.asarray(img), mask)
    assert img.getpalette()[:15] == [c for rgb in AIHUB_PALETTE for c in rgb]


def test_collect_inputs(tmp_path):
    with pytest.raises(InputError, match='does not exist'):
        collect_inputs(str(tmp_path / 'nope'))
    with pytest.raises(InputError, match='no images'):
        collect_inputs(str(tmp_path))
    for name in ('a.jpg', 'a.PNG', 'sub/b.jpeg', 'notes.txt'):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b'x')
    names = [n for _, n in collect_inputs(str(tmp_path))]
    assert names == ['a_png', 'a_jpg', 'sub/b']  # sorted paths: 'P' < 'j'
    (tmp_path / 'list.txt').write_text('# photos\nsub/b.jpeg\n')
    assert collect_inputs(str(tmp_path / 'list.txt')) == [
        (str(tmp_path / 'sub' / 'b.jpeg'), 'b')]


def test_written_files_get_the_umask_mode(tmp_path):
    """mkstemp's 0o600 made every converted image, mask and report
    unreadable to other users and containers."""
    import os
    import subprocess
    import sys
    code = ('import os, sys\n'
            'from cardamage_mmseg.core import atomic_write\n'
            'atomic_write(sys.argv[1], lambda p: open(p, "w").write("x"))\n'
            'print(oct(os.stat(sys.argv[1]).st_mode & 0o777))\n')
    for umask, mode in ((0o022, '0o644'), (0o077, '0o600')):
        res = subprocess.run(
            [sys.executable, '-c', f'import os; os.umask({umask}); ' +
             f'exec({code!r})', str(tmp_path / f'f{umask}.txt')],
            capture_output=True, text=True, timeout=60,
            cwd=os.path.dirname(os.path.dirname(__file__)))
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == mode


@pytest.mark.parametrize('shape,classes', [((3024, 4032), 2), ((7, 13), 2),
                                           ((1, 1), 2), ((33, 9), 5),
                                           ((40, 31), 3)])
def test_masks_with_known_classes_read_back_unchanged(tmp_path, shape,
                                                      classes):
    from PIL import Image

    from cardamage_mmseg.core.masks import png_bits, save_mask
    from cardamage_mmseg.core.palette import palette_for
    mask = np.random.default_rng(0).integers(0, classes, shape
                                             ).astype(np.uint8)
    path = str(tmp_path / 'm.png')
    palette = palette_for([f'c{i}' for i in range(classes)])
    save_mask(mask, path, palette, num_values=classes)
    with Image.open(path) as img:
        assert img.mode == 'P'
        assert img.info.get('bits', None) in (None, png_bits(classes))
        assert np.array_equal(np.array(img), mask)
        assert img.getpalette()[:3 * classes] == sum(palette, [])
    with open(path, 'rb') as f:  # IHDR bit depth
        assert f.read(25)[24] == png_bits(classes) < 8


def test_a_mask_value_that_does_not_fit_its_bits_is_refused(tmp_path):
    from cardamage_mmseg.core.masks import save_mask
    mask = np.array([[0, 1], [2, 255]], np.uint8)
    with pytest.raises(ValueError, match='m.png.*255'):
        save_mask(mask, str(tmp_path / 'm.png'), None, num_values=2)
    assert not (tmp_path / 'm.png').exists()
    save_mask(mask, str(tmp_path / 'm.png'))  # 8 bits: ignore kept


def test_overlay_blends_class_pixels_and_keeps_background():
    from cardamage_mmseg.core.overlay import overlay
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (301, 257, 3), dtype=np.uint8)
    mask = (rng.random((301, 257)) < 0.2).astype(np.uint8)
    mask[:40] = 2
    palette = [(0, 0, 0), (255, 0, 0), (0, 10, 250)]
    before = image.copy()
    got = overlay(image, mask, palette, opacity=0.3)
    assert (image == before).all()  # not drawn in place
    ref = image.astype(np.float64)
    for c in (1, 2):
        sel = mask == c
        ref[sel] = 0.7 * ref[sel] + 0.3 * np.asarray(palette[c])
    assert np.abs(got - ref).max() <= 0.5 + 1e-9  # rounded
    assert (got[mask == 0] == image[mask == 0]).all()
    assert got.dtype == np.uint8 and got.shape == image.shape
