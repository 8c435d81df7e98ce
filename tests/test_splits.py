"""A photo never lands in two splits: converter re-runs with another seed,
a grown export, --split into another split, and the checker's report of
leaks (a name in two splits, identical images under other names)."""
import os.path as osp
import shutil

import pytest

from cardamage_mmseg.datasets import check_dataset
from cardamage_mmseg.datasets.checker import ACROSS_SPLITS
from cardamage_mmseg.datasets.converters import (ConversionError,
                                                 assign_splits,
                                                 load_via_entries,
                                                 run_conversion,
                                                 splits_on_disk)
from conftest import DEMO, run_tool

VIA_TRAIN = osp.join(DEMO, 'train', 'via_region_data.json')


def convert(out, *args):
    return run_tool('tools/dataset_converters/via_to_mmseg.py', VIA_TRAIN,
                    '--out', str(out), '--size', '32', *args)


def test_rerun_with_another_seed_moves_no_photo(tmp_path):
    """On main, the second run put 24 of 62 photos into a second split."""
    first = convert(tmp_path, '--split-ratio', '7,1.5,1.5', '--seed', '0')
    assert first.returncode == 0, first.stderr[-2000:]
    before = splits_on_disk(str(tmp_path))
    assert len(before) == 62 and {len(v) for v in before.values()} == {1}
    second = convert(tmp_path, '--split-ratio', '7,1.5,1.5', '--seed', '1')
    assert second.returncode == 0, second.stderr[-2000:]
    assert '62 photo(s) were converted before and kept their split' in \
        second.stdout
    assert splits_on_disk(str(tmp_path)) == before
    across = {r.split: r for r in check_dataset(str(tmp_path))}
    assert not across[ACROSS_SPLITS].problems


def test_grown_export_splits_only_the_new_photos(tmp_path):
    entries, _ = load_via_entries(VIA_TRAIN, osp.dirname(VIA_TRAIN))
    old = entries[:40]
    assert assign_splits(old, str(tmp_path), ratios=[7, 1.5, 1.5]) == (0, 40)
    run_conversion(old, str(tmp_path), size=32)
    first = {e.stem: e.split for e in old}
    everything, _ = load_via_entries(VIA_TRAIN, osp.dirname(VIA_TRAIN))
    kept, new = assign_splits(everything, str(tmp_path),
                              ratios=[7, 1.5, 1.5], seed=5)
    assert (kept, new) == (40, len(everything) - 40)
    assert {e.stem: e.split for e in everything if e.stem in first} == first
    run_conversion(everything, str(tmp_path), size=32)
    assert {len(v) for v in splits_on_disk(str(tmp_path)).values()} == {1}


def test_split_into_another_split_stops(tmp_path):
    assert convert(tmp_path, '--split', 'train').returncode == 0
    res = convert(tmp_path, '--split', 'val')
    assert res.returncode == 2, res.stderr[-2000:]
    assert 'already converted into another split than --split val' in \
        res.stderr and 'in train' in res.stderr
    assert not osp.isdir(tmp_path / 'img_dir' / 'val') or not list(
        (tmp_path / 'img_dir' / 'val').iterdir())


def test_existing_leak_stops_the_converter(tmp_path):
    entries, _ = load_via_entries(VIA_TRAIN, osp.dirname(VIA_TRAIN))
    assign_splits(entries[:3], str(tmp_path), split='train')
    run_conversion(entries[:3], str(tmp_path), size=32)
    stem = entries[0].stem
    (tmp_path / 'img_dir' / 'test').mkdir(parents=True)
    shutil.copy(tmp_path / 'img_dir' / 'train' / f'{stem}.jpg',
                tmp_path / 'img_dir' / 'test' / f'{stem}.jpg')
    with pytest.raises(ConversionError, match=f'{stem} \\(test\\+train\\)'):
        assign_splits(entries, str(tmp_path), ratios=[7, 1.5, 1.5])


def test_checker_reports_leaks_between_splits(tmp_path):
    entries, _ = load_via_entries(VIA_TRAIN, osp.dirname(VIA_TRAIN))
    assign_splits(entries[:4], str(tmp_path), split='train')
    run_conversion(entries[:4], str(tmp_path), size=32)
    train_img = tmp_path / 'img_dir' / 'train'
    train_ann = tmp_path / 'ann_dir' / 'train'
    for sub in ('img_dir', 'ann_dir'):
        (tmp_path / sub / 'val').mkdir(parents=True)
    a, b = entries[0].stem, entries[1].stem
    # the same name in two splits
    shutil.copy(train_img / f'{a}.jpg', tmp_path / 'img_dir' / 'val')
    shutil.copy(train_ann / f'{a}.png', tmp_path / 'ann_dir' / 'val')
    # the same image under another name
    shutil.copy(train_img / f'{b}.jpg',
                tmp_path / 'img_dir' / 'val' / 'renamed.jpg')
    shutil.copy(train_ann / f'{b}.png',
                tmp_path / 'ann_dir' / 'val' / 'renamed.png')
    reports = {r.split: r for r in check_dataset(str(tmp_path),
                                                 ('train', 'val'))}
    problems = dict(reports[ACROSS_SPLITS].problems)
    assert 'in 2 splits (train, val)' in problems[a]
    [renamed] = [why for path, why in problems.items()
                 if path.endswith(f'{b}.jpg')]
    assert 'renamed.jpg (val)' in renamed
    assert len(problems) == 2
