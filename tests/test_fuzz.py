"""Property-based tests: random VIA / AI Hub JSON structures never crash
the converters, never produce a mask whose size disagrees with its image,
and every rejected item carries a reason."""
import json
import os.path as osp
import shutil
import tempfile

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from cardamage_mmseg.datasets.checker import check_split
from cardamage_mmseg.datasets.converters import (ConversionError,
                                                 load_aihub_entries,
                                                 load_via_entries,
                                                 run_conversion)
from cardamage_mmseg.datasets.converters.aihub import parse_label

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NUMBERS = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 5, 10, 19, 20, 1e308, -0.0]))
JUNK = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=5),
                 st.lists(NUMBERS, max_size=3))
NAMES = st.sampled_from(['a.jpg', 'b.jpg', 'a.jpg', 'missing.jpg', '',
                         '../a.jpg', 'caf\udce9.jpg', 'b.JPG'])


def coords(n):
    """Half plausible (in or near the image), half junk."""
    return st.one_of(
        st.lists(st.integers(-3, 25), min_size=n, max_size=n),
        st.lists(st.one_of(NUMBERS, JUNK), min_size=n, max_size=n))


@st.composite
def good_via_region(draw):
    n = draw(st.integers(2, 6))
    xs = draw(st.lists(st.integers(-3, 25), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(-3, 25), min_size=n, max_size=n))
    return {'shape_attributes': {'name': 'polygon', 'all_points_x': xs,
                                 'all_points_y': ys},
            'region_attributes': {'name': 'damage'}}


@st.composite
def via_region(draw):
    if draw(st.booleans()):
        return draw(good_via_region())
    n = draw(st.integers(0, 6))
    plausible = st.fixed_dictionaries({
        'name': st.just('polygon'),
        'all_points_x': coords(n), 'all_points_y': coords(n)})
    shape = draw(st.one_of(
        plausible,
        st.fixed_dictionaries({
            'name': st.sampled_from(['polygon', 'polyline', 'rect',
                                     'circle', 7]),
            'all_points_x': st.one_of(coords(n), JUNK),
            'all_points_y': st.one_of(coords(n), coords(n + 1), JUNK),
        }),
        st.fixed_dictionaries({'name': st.just('rect'), 'x': NUMBERS,
                               'y': NUMBERS, 'width': NUMBERS,
                               'height': NUMBERS}),
        JUNK))
    attrs = draw(st.one_of(
        st.just({'name': 'damage'}),
        st.fixed_dictionaries({'name': st.sampled_from(
            ['damage', 'dent', '', 'DAMAGE'])}),
        st.fixed_dictionaries({'name': st.dictionaries(
            st.sampled_from(['damage', 'x']), st.booleans())}),
        JUNK))
    return {'shape_attributes': shape, 'region_attributes': attrs}


@st.composite
def via_file(draw):
    plausible = st.fixed_dictionaries({
        'filename': st.sampled_from(['a.jpg', 'b.jpg']),
        'regions': st.lists(via_region(), min_size=1, max_size=4)})
    records = draw(st.lists(st.one_of(
        plausible,
        st.fixed_dictionaries({
            'filename': st.one_of(st.sampled_from(['a.jpg', 'b.jpg']), NAMES,
                                  JUNK),
            'regions': st.one_of(
                st.lists(via_region(), max_size=4),
                st.dictionaries(st.sampled_from(['0', '1', '10']),
                                via_region(), max_size=3), JUNK),
        }), JUNK), max_size=5))
    layout = draw(st.sampled_from(['dict', 'list', 'v2']))
    if layout == 'list':
        return records
    as_dict = {f'k{i}': r for i, r in enumerate(records)}
    return {'_via_img_metadata': as_dict} if layout == 'v2' else as_dict


def images_folder():
    folder = tempfile.mkdtemp(prefix='fuzz_')
    Image.new('RGB', (20, 16), (9, 9, 9)).save(osp.join(folder, 'a.jpg'))
    Image.new('RGB', (12, 24), (9, 9, 9)).save(osp.join(folder, 'b.jpg'))
    return folder


def assert_masks_match_images(out):
    for split_dir in ('train', ):
        rep = check_split(out, split_dir, num_classes=2)
        bad = [p for p in rep.problems if 'folder does not exist' not in p[1]
               and 'no *.jpg' not in p[1]]
        assert not bad, bad


@SETTINGS
@given(data=via_file())
def test_via_converter_never_crashes(data):
    folder = images_folder()
    try:
        path = osp.join(folder, 'via.json')
        with open(path, 'w') as f:
            json.dump(data, f)
        try:
            entries, skipped = load_via_entries(path, folder)
        except ConversionError as err:
            assert 'not a VIA file' in str(err)
            return
        assert all(reason for _, reason in skipped)
        out = osp.join(folder, 'out')
        summary = run_conversion(entries, out, size=0)
        assert all(reason for _, reason in summary.problems)
        assert summary.written <= 2
        event(f'images written: {summary.written}, polygons: '
              f'{min(summary.polygons, 2)}+')
        assert_masks_match_images(out)
    finally:
        shutil.rmtree(folder)


@st.composite
def aihub_label(draw):
    point = st.one_of(st.lists(st.integers(-2, 22), min_size=2, max_size=2),
                      st.lists(NUMBERS, min_size=2, max_size=2), JUNK)
    good_poly = st.lists(st.lists(st.integers(-2, 22), min_size=2,
                                  max_size=2), min_size=3, max_size=6)
    poly = st.one_of(good_poly, st.lists(point, max_size=6))
    good_ann = st.fixed_dictionaries({
        'damage': st.sampled_from(['Scratched', 'Separated', 'Crushed',
                                   'Breakage']),
        'segmentation': st.lists(st.lists(good_poly, min_size=1, max_size=2),
                                 min_size=1, max_size=1).map(lambda x: [x])})
    if draw(st.booleans()):
        return {'images': {'width': 20, 'height': 16, 'file_name': 'a.jpg'},
                'annotations': draw(st.lists(good_ann, min_size=1,
                                             max_size=3))}
    seg = st.one_of(st.lists(st.lists(st.lists(poly, max_size=2),
                                      max_size=2), max_size=2),
                    st.lists(NUMBERS, max_size=8), JUNK)
    ann = st.fixed_dictionaries({
        'damage': st.sampled_from(['Scratched', 'Separated', 'Crushed',
                                   'Breakage', 'Dent', None]),
        'segmentation': seg})
    images = st.one_of(
        st.just({'width': 20, 'height': 16, 'file_name': 'a.jpg'}),
        st.fixed_dictionaries({'width': st.one_of(st.just(20), NUMBERS),
                               'height': st.one_of(st.just(16), NUMBERS),
                               'file_name': st.just('a.jpg')}), JUNK)
    return draw(st.one_of(
        st.fixed_dictionaries({'images': images,
                               'annotations': st.lists(ann, max_size=4)}),
        st.fixed_dictionaries({'images': images,
                               'annotations': st.one_of(
                                   st.lists(st.one_of(ann, JUNK),
                                            max_size=4), JUNK)}),
        JUNK))


@SETTINGS
@given(label=aihub_label(), mode=st.sampled_from(['binary', 'multiclass']))
def test_aihub_converter_never_crashes(label, mode):
    folder = tempfile.mkdtemp(prefix='fuzz_aihub_')
    try:
        imgs, labs = osp.join(folder, 'img'), osp.join(folder, 'lab')
        for d in (imgs, labs):
            shutil.os.makedirs(d)
        Image.new('RGB', (20, 16)).save(osp.join(imgs, 'a.jpg'))
        with open(osp.join(labs, 'a.json'), 'w') as f:
            json.dump(label, f)
        try:
            parse_label(label, mode)
        except ValueError as err:
            assert str(err)
        entries, skipped = load_aihub_entries(imgs, labs, mode)
        assert all(reason for _, reason in skipped)
        out = osp.join(folder, 'out')
        summary = run_conversion(entries, out)
        event(f'written: {summary.written}, polygons: '
              f'{min(summary.polygons, 2)}+')
        assert all(reason for _, reason in summary.problems)
        for split in summary.per_split:
            rep = check_split(out, split, num_classes=5)
            assert not [p for p in rep.problems if 'no *.jpg' not in p[1]]
            for name in shutil.os.listdir(osp.join(out, 'ann_dir', split)):
                m = np.array(Image.open(osp.join(out, 'ann_dir', split,
                                                 name)))
                assert m.shape == (16, 20)
    finally:
        shutil.rmtree(folder)


@SETTINGS
@given(mask=st.lists(st.integers(0, 255), min_size=12, max_size=12),
       shape=st.sampled_from([(3, 4), (4, 3), (2, 6)]))
def test_checker_flags_exactly_out_of_range_values(mask, shape):
    folder = tempfile.mkdtemp(prefix='fuzz_check_')
    try:
        from conftest import write_pair
        arr = np.array(mask, np.uint8).reshape(3, 4)
        write_pair(folder, 'train', 'x', size=(4, 3), mask=arr)
        if shape != (3, 4):  # mismatching mask instead
            Image.fromarray(arr.reshape(shape)).save(
                osp.join(folder, 'ann_dir', 'train', 'x.png'))
        rep = check_split(folder, 'train', num_classes=2)
        bad_values = any(v not in (0, 1, 255) for v in mask)
        if shape != (3, 4):
            assert len(rep.problems) == 1 and '!= image' in rep.problems[0][1]
        elif bad_values:
            assert len(rep.problems) == 1 and 'outside' in rep.problems[0][1]
        elif 255 in mask and 1 not in mask:  # damage painted 255?
            assert len(rep.problems) == 1 and 'painted 255' in \
                rep.problems[0][1]
        else:
            assert not rep.problems
    finally:
        shutil.rmtree(folder)
