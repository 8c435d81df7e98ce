"""tools/infer.py and DamageSegmenter on the real sample and generated
images: outputs, report figures, EXIF, odd formats, bad files, ensembles."""
import csv
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.apis import DamageSegmenter, damage_report
from cardamage_mmseg.core import (ImageReadError, read_image_rgb,
                                  to_rgb_array)
from cardamage_mmseg.cli.main import run
from conftest import DEMO, load_tool, run_tool, write_ensemble_config


@pytest.fixture(scope='module')
def segmenter(members):
    cfg, ckpt = members['b0']
    return DamageSegmenter(cfg, ckpt)


@pytest.mark.parametrize('values,dtype,expected', [
    ([0, 7, 255], np.uint8, [0, 7, 255]),        # kept
    ([0.0, 0.5, 1.0], np.float32, [0, 128, 255]),  # [0, 1] floats
    ([0.0, 7.0, 255.0], np.float64, [0, 7, 255]),  # 0..255 floats
    ([0, 1, 1], np.int64, [0, 1, 1]),            # small ints stay ints
    ([False, True, True], bool, [0, 255, 255]),  # a mask
    ([0, 257, 514], np.uint16, [0, 128, 255]),   # 16 bit: own maximum
    ([-3.0, 0.5, 1.0], np.float32, [0, 128, 255]),  # negatives clip
])
def test_array_values_to_uint8(values, dtype, expected):
    arr = np.array(values, dtype=dtype).reshape(1, 3)
    rgb = to_rgb_array(arr)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == expected
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_bad_arrays_are_refused_with_their_name():
    bad = np.zeros((4, 4, 3), np.float32)
    bad[1, 1, 0] = np.nan
    with pytest.raises(ImageReadError, match=r'<array 3>.*NaN'):
        to_rgb_array(bad, '<array 3>')
    with pytest.raises(ImageReadError, match=r'array: shape \(4, 4, 2\)'):
        to_rgb_array(np.zeros((4, 4, 2), np.uint8))


def test_float_tiff_in_unit_range_is_not_read_black(tmp_path):
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(values, mode='F').save(tmp_path / 'unit.tif')
    rgb = read_image_rgb(str(tmp_path / 'unit.tif'))
    assert rgb.shape == (3, 4, 3)
    assert rgb[..., 1].tolist() == np.round(values * 255).astype(
        np.uint8).tolist()


def test_batch_of_same_aspect_different_resolution(segmenter):
    """Two photos that resize to the same input but come back at different
    sizes share a batch: masks as when run one by one (this crashed in
    torch.stack before)."""
    rgb = np.array(Image.open(osp.join(DEMO, 'val', sorted(
        f for f in os.listdir(osp.join(DEMO, 'val'))
        if f.endswith('.jpg'))[0])).convert('RGB').resize((160, 120)))
    large = np.array(Image.fromarray(rgb).resize((320, 240)))
    together = segmenter([rgb, large, rgb], batch_size=3)
    alone = [segmenter(x)[0] for x in (rgb, large)]
    assert [r.mask.shape for r in together] == [(120, 160), (240, 320),
                                                (120, 160)]
    assert np.array_equal(together[0].mask, alone[0].mask)
    assert np.array_equal(together[1].mask, alone[1].mask)
    assert np.array_equal(together[2].mask, alone[0].mask)
    assert together[1].source == '<array 1>'


def test_report_matches_direct_computation():
    mask = np.zeros((100, 200), np.uint8)
    mask[10:20, 10:30] = 1  # 200 px region
    mask[50:52, 100:101] = 1  # 2 px speck, below the minimum area
    mask[60:90, 150:190] = 1  # 1200 px region
    probs = np.stack([1 - mask * 0.8, mask * 0.8 + (1 - mask) * 0.0])
    probs = probs.astype(np.float32)
    rep = damage_report(mask, probs, ('background', 'damage'),
                        min_region_fraction=0.001)  # 20 px
    assert rep['width'] == 200 and rep['height'] == 100
    assert rep['damage_share'] == pytest.approx(1402 / 20000)
    assert rep['num_regions'] == 2
    boxes = sorted(r['bbox'] for r in rep['regions'])
    assert boxes == [[10, 10, 20, 10], [150, 60, 40, 30]]
    assert sorted(r['area_px'] for r in rep['regions']) == [200, 1200]
    assert rep['damage_confidence'] == pytest.approx(0.8)
    expected_mean = (1402 * 0.8 + (20000 - 1402) * 1.0) / 20000
    assert rep['mean_confidence'] == pytest.approx(expected_mean, abs=1e-4)


def test_api_on_path_array_and_list(segmenter):
    path = osp.join(DEMO, 'val', '1.jpg')
    [from_path] = segmenter(path)
    rgb = np.array(Image.open(path).convert('RGB'))
    [from_array] = segmenter(rgb)
    assert from_path.mask.shape == rgb.shape[:2]
    assert np.array_equal(from_path.mask, from_array.mask)
    assert from_path.probs.shape[0] == 2  # at the model's size
    assert max(from_path.probs.shape[1:]) < max(rgb.shape[:2])
    assert np.allclose(from_path.probs.sum(0), 1, atol=1e-4)
    both = segmenter([path, rgb], batch_size=2)
    assert np.array_equal(both[1].mask, from_path.mask)


def test_api_takes_every_kind_of_photo(segmenter, tmp_path):
    """Path, PIL image, bytes and file objects used to fail ("object of
    type 'PosixPath' has no len()", "shape () is not an image")."""
    import io
    import pathlib
    src = Image.open(osp.join(DEMO, 'val', '4.jpg')).convert('RGB')
    src = src.resize((160, 96))
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF applied for paths, PIL images, bytes, files
    path = tmp_path / 'exif.jpg'
    src.save(path, exif=exif, quality=95)
    [expected] = segmenter(str(path))
    assert expected.mask.shape == (160, 96)
    data = path.read_bytes()
    inputs = [path, Image.open(path), data, bytearray(data),
              io.BytesIO(data), open(path, 'rb')]
    results = segmenter(inputs, batch_size=3)
    results += segmenter(pathlib.Path(path))
    results += segmenter((path,))
    assert [r.source for r in results] == [
        str(path), '<image 1>', '<bytes 2>', '<bytes 3>', '<file 4>',
        '<file 5>', str(path), str(path)]
    for res in results:
        assert np.array_equal(res.mask, expected.mask), res.source
    inputs[-1].close()
    with pytest.raises(TypeError, match='int is not an image'):
        segmenter(3)
    with pytest.raises(ImageReadError, match='<bytes 0>'):
        segmenter(b'not an image')


def test_odd_formats_are_converted(segmenter, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / 'gray.png')
    Image.fromarray(np.dstack([rgb, np.full((45, 70), 128, np.uint8)]),
                    'RGBA').save(tmp_path / 'rgba.png')
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(
        tmp_path / 'deep.png')
    for name in ('gray.png', 'rgba.png', 'deep.png'):
        [res] = segmenter(str(tmp_path / name))
        assert res.mask.shape == (45, 70)


def test_exif_rotated_photo_is_segmented_upright(segmenter, tmp_path):
    src = Image.open(osp.join(DEMO, 'val', '4.jpg')).convert('RGB')
    src = src.resize((160, 96))
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer rotates 90 degrees clockwise
    src.save(tmp_path / 'exif.jpg', exif=exif, quality=95)
    upright = src.transpose(Image.Transpose.ROTATE_270)
    [res_exif] = segmenter(str(tmp_path / 'exif.jpg'))
    decoded = np.array(Image.open(tmp_path / 'exif.jpg').convert('RGB'))
    [res_up] = segmenter(np.ascontiguousarray(np.rot90(decoded, k=-1)))
    assert res_exif.mask.shape == (160, 96) == upright.size[::-1]
    assert np.array_equal(res_exif.mask, res_up.mask)


def test_infer_folder_end_to_end(members, tmp_path):
    cfg, ckpt = members['b0']
    folder = tmp_path / 'photos'
    shutil.copytree(osp.join(DEMO, 'test'), folder / 'sub')
    (folder / 'broken.JPG').write_bytes(b'\xff\xd8\xff not really')
    Image.open(osp.join(DEMO, 'val', '1.jpg')).resize((77, 51)).save(
        folder / 'small.PNG')
    out = str(tmp_path / 'out')
    res = run_tool('tools/infer.py', cfg, ckpt, str(folder), '--out', out,
                   '--batch-size', '4')
    assert res.returncode == 0, res.stderr[-3000:]
    assert '9 image(s) segmented' in res.stdout
    assert '1 failed' in res.stdout and 'broken.JPG' in res.stdout
    assert 'img/s' in res.stderr  # progress bar
    rows = json.load(open(osp.join(out, 'report.json')))
    assert len(rows) == 10
    by_file = {osp.basename(r['file']): r for r in rows}
    assert by_file['broken.JPG']['status'] == 'error'
    for name, row in by_file.items():
        if row['status'] != 'ok':
            continue
        stem = osp.splitext(osp.relpath(row['file'], folder))[0]
        mask = np.array(Image.open(osp.join(out, 'masks', stem + '.png')))
        overlay = Image.open(osp.join(out, 'overlays', stem + '.jpg'))
        with Image.open(row['file']) as im:
            w, h = im.size
        assert mask.shape == (h, w) and (row['width'], row['height']) == (w,
                                                                          h)
        assert set(np.unique(mask)) <= {0, 1}
        f = min(1.0, 1000 / max(w, h))  # the default --overlay-size
        assert overlay.size[0] == int(w * f + 0.5)
        assert overlay.size[1] > int(h * f + 0.5)  # legend bar
        assert row['damage_share'] == pytest.approx(
            float((mask == 1).mean()), abs=1e-6)
    with open(osp.join(out, 'report.csv')) as f:
        assert len(list(csv.DictReader(f))) == 10
    # re-run: everything is skipped, report still complete
    again = run_tool('tools/infer.py', cfg, ckpt, str(folder), '--out', out)
    assert '0 image(s) segmented' in again.stdout
    assert '9 already done' in again.stdout
    assert len(json.load(open(osp.join(out, 'report.json')))) == 10
    redo = run_tool('tools/infer.py', cfg, ckpt, str(folder / 'small.PNG'),
                    '--out', out, '--overwrite')
    assert '1 image(s) segmented' in redo.stdout


def test_infer_never_mixes_up_two_photos_with_one_name(members, tmp_path):
    """a.jpg and a.png in one folder, then two lists naming different x.jpg
    files: every photo gets its own outputs, and a re-run reuses outputs
    only when they were made from the same file."""
    cfg, ckpt = members['b0']
    photo = Image.open(osp.join(DEMO, 'val', '1.jpg'))
    folder = tmp_path / 'photos'
    folder.mkdir()
    photo.resize((80, 60)).save(folder / 'a.jpg')
    photo.resize((40, 30)).save(folder / 'a.png')
    out = str(tmp_path / 'out')
    infer = load_tool('tools/infer.py')  # in this process: 4 runs
    assert run(infer.main, [cfg, ckpt, str(folder), '--out', out]) == 0
    assert sorted(os.listdir(osp.join(out, 'masks'))) == ['a_jpg.png',
                                                          'a_png.png']
    assert np.array(Image.open(osp.join(out, 'masks', 'a_png.png'))
                    ).shape == (30, 40)
    # two lists, each naming a different x.jpg, into one output folder
    for i, size in enumerate(((64, 48), (32, 24))):
        (tmp_path / f'd{i}').mkdir()
        photo.resize(size).save(tmp_path / f'd{i}' / 'x.jpg')
        (tmp_path / f'list{i}.txt').write_text(f'd{i}/x.jpg\n')
    for i, width in ((0, 64), (1, 32), (1, 32)):
        assert run(infer.main, [cfg, ckpt, str(tmp_path / f'list{i}.txt'),
                                '--out', out]) == 0
        [row] = json.load(open(osp.join(out, 'report.json')))
        assert row['width'] == width and row['file'].endswith(f'd{i}/x.jpg')
        assert np.array(Image.open(osp.join(out, 'masks', 'x.png'))
                        ).shape[1] == width
    assert row['status'] == 'exists'  # the last run: same file, reused


def test_infer_with_an_ensemble_config_and_text_list(members, tmp_path):
    """The member checkpoint set on the command line, as the ensemble
    configs tell users to (infer.py had no --cfg-options)."""
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    cfg = write_ensemble_config(tmp_path / 'ens.py',
                                [(c0, k0), (c1, 'set/on/the/cli.pth')],
                                fusion='union')
    listing = tmp_path / 'list.txt'
    listing.write_text(f"{osp.join(DEMO, 'val', '1.jpg')}\n"
                       f"{osp.join(DEMO, 'val', '4.jpg')}\n")
    out = str(tmp_path / 'out')
    res = run_tool('tools/infer.py', str(cfg), str(listing), '--out', out,
                   '--cfg-options', f'model.members.1.checkpoint={k1}')
    assert res.returncode == 0, res.stderr[-3000:]
    assert '2 image(s) segmented' in res.stdout
    assert sorted(os.listdir(osp.join(out, 'masks'))) == ['1.png', '4.png']


def test_infer_errors(members, tmp_path):
    cfg, ckpt = members['b0']
    (tmp_path / 'empty').mkdir()
    res = run_tool('tools/infer.py', cfg, ckpt, str(tmp_path / 'empty'))
    assert res.returncode != 0 and 'no images' in res.stderr
    res = run_tool('tools/infer.py', cfg, ckpt, str(tmp_path / 'missing'))
    assert res.returncode != 0 and 'does not exist' in res.stderr
