"""Converter and data-set edge cases that used to go wrong: temporary-looking
photo names, split names that are paths, undecodable file names, an --out
that is a file, byte order marks, upper-case suffixes, the skipped count,
AI Hub labels pairing across folders, a full disk, EXIF-turned photos in
hand-made data sets."""
import errno
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.core import files as core_files
from cardamage_mmseg.datasets.checker import check_split
from cardamage_mmseg.datasets.converters import (load_aihub_entries,
                                                 load_via_entries,
                                                 run_conversion)
from cardamage_mmseg.datasets.converters.common import (
    WriteError, remove_stale_temporaries, safe_stem)
from conftest import load_tool, write_pair
from test_converters import SQUARE, aihub_label, make_image


@pytest.fixture(scope='module')
def via_tool():
    return load_tool('tools/dataset_converters/via_to_mmseg.py')


def via_project(folder, names, bom=False):
    data = {n + '1': dict(filename=n, size=1, regions=[dict(
        shape_attributes=SQUARE, region_attributes=dict(name='damage'))])
        for n in names}
    for n in names:
        make_image(osp.join(folder, n))
    text = json.dumps(data).encode('utf-8')
    path = osp.join(folder, 'via.json')
    with open(path, 'wb') as f:
        f.write(b'\xef\xbb\xbf' + text if bom else text)
    return path


def test_a_photo_named_like_a_temporary_survives_reruns(tmp_path, via_tool,
                                                         capsys):
    """'.tmp-*' photos were deleted on the next run as partial files."""
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['.tmp-car.jpg', 'b.jpg'])
    out = str(tmp_path / 'out')
    for _ in range(2):
        assert via_tool.main([project, '--out', out]) == 0
    names = sorted(os.listdir(osp.join(out, 'img_dir', 'train')))
    assert names == ['_tmp-car.jpg', 'b.jpg']  # no hidden output
    # a user's own '.tmp-' file is not ours to delete; ours (.part) are
    folder = osp.join(out, 'img_dir', 'train')
    open(osp.join(folder, '.tmp-user.jpg'), 'wb').close()
    open(osp.join(folder, '.tmp-abc123.jpg.part'), 'wb').close()
    assert remove_stale_temporaries(out) == 1
    assert '.tmp-user.jpg' in os.listdir(folder)
    printed = capsys.readouterr().out
    assert 'skipped: 0' in printed


def test_removed_partials_are_not_counted_as_skipped(tmp_path, via_tool,
                                                     capsys):
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['a.jpg'])
    out = tmp_path / 'out'
    (out / 'ann_dir' / 'train').mkdir(parents=True)
    (out / 'ann_dir' / 'train' / '.tmp-x1.png.part').write_bytes(b'12')
    assert via_tool.main([project, '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'skipped: 0' in printed and 'removed 1 partial' in printed


@pytest.mark.parametrize('split', ['../../escaped', '/abs', 'a/b', '..'])
def test_a_split_name_that_is_a_path_is_refused(tmp_path, via_tool, capsys,
                                                split):
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['a.jpg'])
    out = tmp_path / 'x' / 'y' / 'out'
    assert via_tool.main([project, '--out', str(out), '--split',
                          split]) == 2
    assert 'not a path' in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()
    assert not (tmp_path / 'escaped').exists()


def test_out_that_is_a_file_is_a_clear_error(tmp_path, via_tool, capsys):
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['a.jpg'])
    target = tmp_path / 'taken'
    target.write_text('mine')
    assert via_tool.main([project, '--out', str(target)]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
    assert target.read_text() == 'mine'


def test_a_byte_order_mark_is_read(tmp_path, via_tool):
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['a.jpg'], bom=True)
    entries, skipped = load_via_entries(project, str(src))
    assert len(entries) == 1 and not skipped
    assert via_tool.main([project, '--out', str(tmp_path / 'o')]) == 0


def test_undecodable_long_names_convert_and_report(tmp_path, capsys):
    """A 100-byte non-UTF-8 name became 300 bytes of U+FFFD: the write
    failed with a traceback and no report."""
    stem = os.fsdecode(b'\xff' * 100)
    img_root, lab_root = tmp_path / 'img', tmp_path / 'lab'
    img_root.mkdir()
    lab_root.mkdir()
    make_image(str(img_root / (stem + '.jpg')))
    (lab_root / (stem + '.json')).write_text(json.dumps(aihub_label(
        'x', 40, 40, [dict(damage='Crushed',
                           segmentation=[[[[1, 1], [9, 1], [9, 9]]]])])))
    (lab_root / (stem + 'zz.json')).write_text('{}')  # no image: reported
    entries, skipped = load_aihub_entries(str(img_root), str(lab_root))
    summary = run_conversion(entries, str(tmp_path / 'out'),
                             unmatched=skipped)
    assert summary.written == 1
    [name] = os.listdir(tmp_path / 'out' / 'ann_dir' / 'train')
    assert name == '_' * 100 + '.png'
    print(summary.report())  # printing the problems must not fail
    assert '\\udcff' in capsys.readouterr().out
    report = json.load(open(summary.report_path, encoding='utf-8'))
    assert report['written'] == 1 and report['skipped_images'] == 1
    long = safe_stem('é' * 300 + '.jpg')
    assert len(long.encode()) <= 200 and long != safe_stem(
        'é' * 299 + 'e.jpg')


def test_aihub_label_pairs_with_the_image_of_its_own_folder(tmp_path):
    img_root, lab_root = tmp_path / 'img', tmp_path / 'lab'
    for folder in ('A', 'B'):
        (img_root / folder).mkdir(parents=True)
        make_image(str(img_root / folder / 'x.jpg'),
                   size=(40, 40) if folder == 'A' else (50, 50))
    (lab_root / 'B').mkdir(parents=True)
    (lab_root / 'B' / 'x.json').write_text(json.dumps(
        aihub_label('x', 50, 50, [])))
    [entry], skipped = load_aihub_entries(str(img_root), str(lab_root))
    assert entry.image_path == str(img_root / 'B' / 'x.jpg') and not skipped
    # elsewhere, two candidates and none in the label's folder: ambiguous
    (lab_root / 'B' / 'x.json').unlink()
    (lab_root / 'C').mkdir()
    (lab_root / 'C' / 'x.json').write_text(json.dumps(
        aihub_label('x', 50, 50, [])))
    entries, skipped = load_aihub_entries(str(img_root), str(lab_root))
    assert not entries and 'which one is meant' in skipped[0][1]


def test_a_full_disk_stops_the_conversion_with_a_report(tmp_path,
                                                        monkeypatch):
    """Pillow ignored the short write: a truncated JPEG was renamed into
    place and the run ended in an OSError traceback with no report."""
    src = tmp_path / 'src'
    src.mkdir()
    project = via_project(str(src), ['a.jpg', 'b.jpg', 'c.jpg'])
    entries, _ = load_via_entries(project, str(src))
    real_write = os.write
    calls = dict(n=0)

    def full_disk_once(fd, data):
        calls['n'] += 1
        if calls['n'] == 3:  # b.jpg's image: half of it, then no space
            return real_write(fd, bytes(data)[:len(data) // 2])
        if calls['n'] == 4:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(core_files.os, 'write', full_disk_once)
    out = str(tmp_path / 'out')
    with pytest.raises(WriteError, match=r'after 1 written.*No space.*'
                       r'report of what finished'):
        run_conversion(entries, out)
    assert sorted(os.listdir(osp.join(out, 'img_dir', 'train'))) == [
        'a.jpg']
    report = json.load(open(osp.join(out, 'conversion_report_train.json')))
    assert report['written'] == 1
    monkeypatch.undo()
    assert run_conversion(entries, out).written == 2  # the rest, later


def test_upper_case_suffix_is_read_by_dataset_and_checker(tmp_path):
    from mmengine.registry import init_default_scope

    from cardamage_mmseg import register  # noqa: F401
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    root = str(tmp_path)
    write_pair(root, 'train', 'a')
    write_pair(root, 'train', 'UPPER')
    jpg = osp.join(root, 'img_dir', 'train', 'UPPER.jpg')
    os.rename(jpg, jpg[:-4] + '.JPG')
    ds = DATASETS.build(dict(type='CarDamageDataset', data_root=root,
                             data_prefix=dict(img_path='img_dir/train',
                                              seg_map_path='ann_dir/train'),
                             pipeline=[]))
    assert sorted(osp.basename(d['img_path']) for d in ds.load_data_list()) \
        == ['UPPER.JPG', 'a.jpg']
    report = check_split(root, 'train', 2)
    assert report.images == 2 and not report.problems


def test_exif_turned_photo_in_a_hand_made_set_is_refused(tmp_path):
    """mmcv turns a photo with EXIF orientation 3 as it loads it, the mask
    stays: both the checker and CheckSegSample were silent."""
    from cardamage_mmseg.datasets.transforms import CheckSegSample
    root = str(tmp_path)
    write_pair(root, 'train', 'turned', size=(40, 30))
    img = osp.join(root, 'img_dir', 'train', 'turned.jpg')
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.open(img).convert('RGB').save(img, exif=exif)
    report = check_split(root, 'train', 2)
    [(path, why)] = report.problems
    assert path == img and 'EXIF orientation 3' in why
    seg = osp.join(root, 'ann_dir', 'train', 'turned.png')
    sample = dict(img=np.zeros((30, 40, 3), np.uint8), img_path=img,
                  gt_seg_map=np.zeros((30, 40), np.uint8),
                  seg_map_path=seg, ori_shape=(30, 40))
    with pytest.raises(ValueError, match='turned.jpg carries EXIF '
                       'orientation 3'):
        CheckSegSample(num_classes=2).transform(sample)
