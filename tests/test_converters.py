"""Converters on hand-made JSONs of every supported shape, pixel-checked."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.datasets.converters import (load_aihub_entries,
                                                 load_via_entries,
                                                 parse_class_map, rasterize,
                                                 run_conversion, split_stems,
                                                 Polygon)
from conftest import DEMO, REPO

SQUARE = dict(name='polygon', all_points_x=[10, 30, 30, 10],
              all_points_y=[5, 5, 25, 25])


def make_image(path, size=(40, 40), exif_orientation=None):
    img = Image.new('RGB', size, (120, 130, 140))
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs['exif'] = exif
    img.save(path, format='JPEG', **kwargs)


def read_mask(root, split, stem):
    return np.array(Image.open(osp.join(root, 'ann_dir', split,
                                        stem + '.png')))


def convert_via(tmp_path, data, **kw):
    path = tmp_path / 'via.json'
    path.write_text(json.dumps(data))
    entries, skipped = load_via_entries(str(path), str(tmp_path), **kw)
    out = str(tmp_path / 'out')
    summary = run_conversion(entries, out, size=kw.get('size', 0))
    return out, summary, skipped


def expected_square():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:26, 10:31] = 1  # inclusive vertices, 8-connected fill
    return mask


@pytest.mark.parametrize('layout', ['v1_list_regions', 'v1_dict_regions',
                                    'v1_list_export', 'v2_project'])
def test_via_layouts_rasterise_the_same_square(tmp_path, layout):
    make_image(tmp_path / 'a.jpg')
    region = dict(shape_attributes=SQUARE,
                  region_attributes=dict(name='damage'))
    record = dict(filename='a.jpg', size=123, file_attributes={})
    if layout == 'v1_dict_regions':
        record['regions'] = {'0': region}
    else:
        record['regions'] = [region]
    data = {
        'v1_list_regions': {'a.jpg123': record},
        'v1_dict_regions': {'a.jpg123': record},
        'v1_list_export': [record],
        'v2_project': {'_via_settings': {}, '_via_img_metadata':
                       {'a.jpg123': record}},
    }[layout]
    out, summary, skipped = convert_via(tmp_path, data)
    assert summary.written == 1 and summary.polygons == 1 and not skipped
    np.testing.assert_array_equal(read_mask(out, 'train', 'a'),
                                  expected_square())


def test_via_class_key_class_map_ignore_and_skip(tmp_path):
    make_image(tmp_path / 'a.jpg')
    regions = [
        dict(shape_attributes=SQUARE, region_attributes=dict(kind='dent')),
        dict(shape_attributes=dict(name='rect', x=0, y=30, width=5,
                                   height=5),
             region_attributes=dict(kind='dirt')),
        dict(shape_attributes=dict(name='polygon', all_points_x=[35, 39, 39],
                                   all_points_y=[0, 0, 4]),
             region_attributes=dict(kind={'scratch': True})),  # checkbox
        dict(shape_attributes=SQUARE, region_attributes=dict(kind='car')),
    ]
    data = {'a': dict(filename='a.jpg', regions=regions)}
    out, summary, _ = convert_via(
        tmp_path, data, class_key='kind',
        class_map=parse_class_map('dent=1,scratch=1,dirt=ignore,car=skip'))
    mask = read_mask(out, 'train', 'a')
    assert summary.polygons == 3
    assert (mask[5:26, 10:31] == 1).all()  # 'car' (skip) painted nothing
    assert (mask[30:36, 0:6] == 255).all()  # rect painted as ignore
    assert mask[1, 38] == 1  # checkbox-style attribute
    assert set(np.unique(mask)) == {0, 1, 255}


def test_via_bad_entries_are_skipped_and_reported(tmp_path):
    make_image(tmp_path / 'a.jpg')
    regions = [
        dict(shape_attributes=dict(name='polygon', all_points_x=[1, 2],
                                   all_points_y=[1, 2]),
             region_attributes=dict(name='damage')),
        dict(shape_attributes=dict(name='polygon',
                                   all_points_x=[1, 500, 5],
                                   all_points_y=[1, 2, 9]),
             region_attributes=dict(name='damage')),
        dict(shape_attributes=SQUARE, region_attributes=dict(name='damage')),
    ]
    data = {'a': dict(filename='a.jpg', regions=regions),
            'b': dict(filename='missing.jpg', regions=[])}
    out, summary, skipped = convert_via(tmp_path, data)
    reasons = ' '.join(r for _, r in summary.problems)
    assert 'need >= 3' in reasons and 'outside the 40x40 image' in reasons
    assert skipped == [('missing.jpg', f'image not found in {tmp_path}')]
    assert summary.written == 1 and summary.polygons == 1
    np.testing.assert_array_equal(read_mask(out, 'train', 'a'),
                                  expected_square())


def test_resize_rasterises_scaled_polygons(tmp_path):
    make_image(tmp_path / 'a.jpg', size=(80, 40))
    poly = dict(name='polygon', all_points_x=[20, 60, 60, 20],
                all_points_y=[10, 10, 30, 30])
    data = {'a': dict(filename='a.jpg', regions=[dict(
        shape_attributes=poly, region_attributes=dict(name='damage'))])}
    path = tmp_path / 'via.json'
    path.write_text(json.dumps(data))
    entries, _ = load_via_entries(str(path), str(tmp_path))
    out = str(tmp_path / 'out')
    run_conversion(entries, out, size=20)
    img = Image.open(osp.join(out, 'img_dir', 'train', 'a.jpg'))
    mask = read_mask(out, 'train', 'a')
    assert img.size == (20, 20) and mask.shape == (20, 20)
    # x 20..60 of 80 -> 5..15 of 20; y 10..30 of 40 -> 5..15 of 20
    expected = np.zeros((20, 20), np.uint8)
    expected[5:16, 5:16] = 1
    np.testing.assert_array_equal(mask, expected)


def test_exif_rotated_image_and_mask_line_up(tmp_path):
    # raw 60x40 stored with orientation 6 (rotate 90 cw): displayed 40x60
    raw = Image.new('RGB', (60, 40), (0, 0, 0))
    raw.paste((255, 255, 255), (0, 0, 10, 10))  # white block top-left raw
    exif = Image.Exif()
    exif[0x0112] = 6
    raw.save(tmp_path / 'r.jpg', format='JPEG', exif=exif, quality=100)
    # annotator saw the displayed image: white block is at top-right
    poly = dict(name='polygon', all_points_x=[30, 39, 39, 30],
                all_points_y=[0, 0, 9, 9])
    data = {'r': dict(filename='r.jpg', regions=[dict(
        shape_attributes=poly, region_attributes=dict(name='damage'))])}
    out, summary, _ = convert_via(tmp_path, data)
    img = np.array(Image.open(osp.join(out, 'img_dir', 'train', 'r.jpg')))
    mask = read_mask(out, 'train', 'r')
    assert img.shape[:2] == mask.shape == (60, 40)
    assert not Image.open(osp.join(out, 'img_dir', 'train',
                                   'r.jpg')).getexif().get(0x0112)
    assert img[mask == 1].mean() > 200  # the mask covers the white block
    assert img[mask == 0].mean() < 30


def aihub_label(stem, w, h, anns):
    return dict(images=dict(width=w, height=h, file_name=stem + '.jpg'),
                annotations=anns)


def write_aihub(tmp_path, labels):
    img_root = tmp_path / '1.원천데이터' / 'TS_1'
    lab_root = tmp_path / '2.라벨링데이터' / 'TL_1'
    img_root.mkdir(parents=True)
    lab_root.mkdir(parents=True)
    for stem, (size, label) in labels.items():
        make_image(img_root / f'{stem}.jpg', size=size)
        (lab_root / f'{stem}.json').write_text(json.dumps(label))
    return str(tmp_path / '1.원천데이터'), str(tmp_path / '2.라벨링데이터')


def test_aihub_binary_and_multiclass_priority(tmp_path):
    big = [[[[0, 0], [39, 0], [39, 39], [0, 39]]]]  # 4-deep nesting
    small = [[[[10, 10], [20, 10], [20, 20], [10, 20]]],
             [[[30, 30], [35, 30], [35, 35]]]]  # two polygons
    label = aihub_label('0000345_as-0037937', 40, 40, [
        dict(damage='Breakage', segmentation=small, area=1, bbox=[]),
        dict(damage='Scratched', segmentation=big, area=1, bbox=[]),
    ])
    img_root, lab_root = write_aihub(
        tmp_path, {'0000345_as-0037937': ((40, 40), label)})
    for mode, inner in (('binary', 1), ('multiclass', 4)):
        entries, skipped = load_aihub_entries(img_root, lab_root, mode)
        assert not skipped and len(entries) == 1
        out = str(tmp_path / mode)
        summary = run_conversion(entries, out)
        assert summary.polygons == 3
        mask = read_mask(out, 'train', '0000345_as-0037937')
        assert mask[15, 15] == inner  # Breakage wins over Scratched
        assert mask[2, 2] == 1  # Scratched elsewhere
        assert mask[33, 34] == inner


def test_aihub_size_mismatch_and_bad_json_reported(tmp_path):
    good = aihub_label('a', 40, 40, [dict(
        damage='Crushed', segmentation=[[[[1, 1], [5, 1], [5, 5]]]])])
    wrong_size = aihub_label('b', 80, 60, [])
    unknown = aihub_label('c', 40, 40, [dict(damage='Dented',
                                             segmentation=[])])
    img_root, lab_root = write_aihub(tmp_path, {
        'a': ((40, 40), good), 'b': ((40, 40), wrong_size),
        'c': ((40, 40), unknown), 'd': ((40, 40), ['not', 'a', 'dict'])})
    entries, skipped = load_aihub_entries(img_root, lab_root, 'multiclass')
    assert [s for s, _ in skipped] == [osp.join(lab_root, 'TL_1', 'd.json')]
    summary = run_conversion(entries, str(tmp_path / 'o'))
    problems = dict(summary.problems)
    assert 'annotation says 80x60' in problems['b']
    assert "unknown damage 'Dented'" in problems['c']
    assert summary.written == 2  # a and c (c has an empty mask)


def test_split_is_deterministic_and_proportional():
    stems = [f'img{i:03d}' for i in range(200)]
    a = split_stems(stems, [7, 1.5, 1.5], seed=3)
    b = split_stems(list(reversed(stems)), [7, 1.5, 1.5], seed=3)
    assert a == b
    counts = {k: list(a.values()).count(k) for k in ('train', 'val', 'test')}
    assert counts == {'train': 140, 'val': 30, 'test': 30}
    assert split_stems(stems, [7, 1.5, 1.5], seed=4) != a


def test_rasterize_later_polygon_wins():
    square = np.array([[0, 0], [9, 0], [9, 9], [0, 9]], float)
    mask = rasterize([Polygon(1, square), Polygon(2, square / 2)], (10, 10))
    assert mask[2, 2] == 2 and mask[8, 8] == 1


def run_cli(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_via_cli_on_real_sample_is_idempotent(tmp_path):
    out = str(tmp_path / 'demo')
    src = osp.join(DEMO, 'val')
    cmd = ['tools/dataset_converters/via_to_mmseg.py',
           osp.join(src, 'via_region_data.json'), '--img-dir', src, '--out',
           out, '--split', 'val', '--size', '128', '--nproc', '2']
    first = run_cli(*cmd)
    assert first.returncode == 0, first.stderr
    assert 'images written: 8' in first.stdout
    report = json.load(open(osp.join(out, 'conversion_report_val.json')))
    assert report['polygons'] == 12 and report['written'] == 8
    masks = sorted(os.listdir(osp.join(out, 'ann_dir', 'val')))
    assert len(masks) == 8
    # every mask has damage and matches its image size
    for name in masks:
        m = np.array(Image.open(osp.join(out, 'ann_dir', 'val', name)))
        assert m.shape == (128, 128) and m.max() == 1
    mtime = os.path.getmtime(osp.join(out, 'ann_dir', 'val', masks[0]))
    second = run_cli(*cmd)
    assert second.returncode == 0
    assert 'images written: 0, already present: 8' in second.stdout
    assert os.path.getmtime(osp.join(out, 'ann_dir', 'val',
                                     masks[0])) == mtime


def test_cli_errors_are_clear(tmp_path):
    res = run_cli('tools/dataset_converters/via_to_mmseg.py',
                  str(tmp_path / 'nope.json'), '--out', str(tmp_path / 'o'))
    assert res.returncode == 2 and 'VIA file not found' in res.stderr
    (tmp_path / 'empty').mkdir()
    res = run_cli('tools/dataset_converters/aihub_to_mmseg.py', '--img-root',
                  str(tmp_path / 'empty'), '--label-root',
                  str(tmp_path / 'empty'), '--out', str(tmp_path / 'o'))
    assert res.returncode == 2 and 'no *.json label files' in res.stderr


def test_via_cli_refuses_when_no_region_fits_the_class_map(tmp_path):
    """The sample names its class 'damage' under 'name': a wrong map or key
    would write 8 all-background masks; it stops before writing any."""
    src = osp.join(DEMO, 'val')
    for extra, hint in ((['--class-map', 'scratch=1'], "class 'damage' not"),
                        (['--class-key', 'type'], 'no "type" in')):
        out = tmp_path / extra[0].strip('-')
        res = run_cli('tools/dataset_converters/via_to_mmseg.py',
                      osp.join(src, 'via_region_data.json'), '--img-dir', src,
                      '--out', str(out), '--split', 'val', *extra)
        assert res.returncode == 2
        assert 'none of the regions matched' in res.stderr
        assert hint in res.stderr
        assert not out.exists()


def test_16_bit_images_are_scaled_as_inference_reads_them(tmp_path):
    """convert('RGB') saturated a 0..4000 grayscale PNG to all 255; the
    converters now read pixels as tools/infer.py does."""
    from cardamage_mmseg.core import read_image_rgb
    ramp = np.linspace(0, 4000, 40 * 40).reshape(40, 40).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / 'deep.png')
    data = {'deep.png': dict(filename='deep.png', regions=[
        dict(shape_attributes=SQUARE, region_attributes={'name': 'damage'})
    ])}
    out, summary, _ = convert_via(tmp_path, data)
    assert summary.written == 1
    written = np.array(Image.open(osp.join(out, 'img_dir', 'train',
                                           'deep.jpg')).convert('L'))
    expected = read_image_rgb(str(tmp_path / 'deep.png'))[..., 0]
    assert written.min() < 10 and written.max() > 245  # not all white
    assert np.abs(written.astype(int) - expected).max() <= 3  # JPEG noise
