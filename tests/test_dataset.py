"""CarDamageDataset: registry, indexing, and every bad-data error."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

import cardamage_mmseg.register  # noqa: F401
from cardamage_mmseg.datasets import DatasetError, check_dataset
from conftest import write_pair
from mmseg.registry import DATASETS, MODELS, TRANSFORMS

init_default_scope('mmseg')

TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs')
]
TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='RandomResize', scale=(32, 32), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='PackSegInputs')
]


def build(root, split='train', pipeline=TRAIN_PIPELINE, **kw):
    return DATASETS.build(dict(
        type=kw.pop('type', 'CarDamageDataset'), data_root=root,
        data_prefix=dict(img_path=f'img_dir/{split}',
                         seg_map_path=f'ann_dir/{split}'),
        pipeline=pipeline, **kw))


def test_registry_lookups():
    for name in ('CarDamageDataset', 'AIHubCarDamageDataset'):
        assert DATASETS.get(name) is not None
    assert TRANSFORMS.get('CheckSegSample') is not None
    for name in ('SoftmaxFocalLoss', 'MaskedDiceLoss', 'SoftIoULoss'):
        assert MODELS.get(name) is not None


def test_binary_metainfo_and_indexing(tiny_dataset):
    ds = build(tiny_dataset)
    assert ds.metainfo['classes'] == ('background', 'damage')
    assert ds.metainfo['palette'] == [[0, 0, 0], [255, 0, 0]]
    assert len(ds) == 3
    sample = ds[0]
    seg = sample['data_samples'].gt_sem_seg.data
    assert seg.shape[-2:] == sample['inputs'].shape[-2:]
    assert set(seg.unique().tolist()) <= {0, 1}


def test_aihub_variant_and_label_set_override(tmp_path):
    from mmengine.config import Config
    from cardamage_mmseg.cli.config import apply_label_set
    root = str(tmp_path)
    mask = np.zeros((30, 40), np.uint8)
    mask[:, 10:] = 4
    write_pair(root, 'train', 'a', mask=mask)
    ds = build(root, type='AIHubCarDamageDataset')
    assert len(ds.metainfo['classes']) == 5
    assert ds[0]['data_samples'].gt_sem_seg.data.max() == 4
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', 'configs',
                                   'segformer_b0_cardamage.py'))
    apply_label_set(cfg, 'aihub')
    assert cfg.model.decode_head.num_classes == 5
    assert cfg.train_dataloader.dataset.type == 'AIHubCarDamageDataset'
    assert cfg.test_dataloader.dataset.type == 'AIHubCarDamageDataset'
    # a 5-class mask in the binary dataset is refused by name
    with pytest.raises(DatasetError, match=r'a\.png.*outside the class'):
        build(root)[0]


def test_real_sample_indexes(demo_converted):
    ds = build(demo_converted, 'val', TEST_PIPELINE)
    assert len(ds) == 8
    for i in range(len(ds)):
        seg = ds[i]['data_samples'].gt_sem_seg.data
        assert seg.shape[-2:] == (256, 256)  # compared at original size
        assert seg.max() == 1


def test_missing_folder_names_it_and_the_command(tmp_path):
    with pytest.raises(DatasetError) as err:
        build(str(tmp_path / 'nowhere'))
    msg = str(err.value)
    assert osp.join('nowhere', 'img_dir', 'train') in msg
    assert 'via_to_mmseg.py' in msg


def test_image_without_mask(tiny_dataset):
    os.remove(osp.join(tiny_dataset, 'ann_dir', 'train', 'train_1.png'))
    with pytest.raises(DatasetError, match=r'(?s)1 image\(s\).*train_1\.jpg'):
        build(tiny_dataset)


def test_mask_size_mismatch(tiny_dataset):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(
        osp.join(tiny_dataset, 'ann_dir', 'train', 'train_0.png'))
    ds = build(tiny_dataset)
    with pytest.raises(DatasetError, match=r'train_0\.png.*10x10.*40x30'):
        ds[0]
    ds = build(tiny_dataset, pipeline=TEST_PIPELINE)  # resized image
    with pytest.raises(DatasetError, match=r'train_0\.png.*10x10'):
        ds[0]


def test_mask_values_out_of_range_but_ignore_ok(tiny_dataset):
    mask = np.zeros((30, 40), np.uint8)
    mask[0, 0] = 255
    write_pair(tiny_dataset, 'train', 'train_0', mask=mask)
    build(tiny_dataset)[0]  # 255 is the ignore index: fine
    mask[1, 1] = 7
    write_pair(tiny_dataset, 'train', 'train_0', mask=mask)
    with pytest.raises(DatasetError, match=r'values \[7\].*0\.\.1'):
        build(tiny_dataset)[0]


def test_rgb_mask_refused(tiny_dataset):
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(
        osp.join(tiny_dataset, 'ann_dir', 'train', 'train_2.png'))
    with pytest.raises(DatasetError, match=r'train_2\.png.*single-channel'):
        build(tiny_dataset)[2]


def test_unreadable_image(tiny_dataset):
    with open(osp.join(tiny_dataset, 'img_dir', 'train', 'train_1.jpg'),
              'wb') as f:
        f.write(b'not a jpeg at all')
    with pytest.raises(DatasetError, match=r'train_1\.jpg'):
        build(tiny_dataset)[1]


def test_checker_reports_all_problems_at_once(tiny_dataset):
    root = tiny_dataset
    os.remove(osp.join(root, 'ann_dir', 'train', 'train_0.png'))
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(
        osp.join(root, 'ann_dir', 'train', 'train_1.png'))
    Image.fromarray(np.full((30, 40), 9, np.uint8)).save(
        osp.join(root, 'ann_dir', 'val', 'val_0.png'))
    with open(osp.join(root, 'img_dir', 'val', 'val_1.jpg'), 'wb') as f:
        f.write(b'\xff\xd8broken')
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(
        osp.join(root, 'ann_dir', 'test', 'orphan.png'))
    reports = {r.split: r for r in check_dataset(root)}
    text = {s: ' '.join(f'{p} {w}' for p, w in r.problems)
            for s, r in reports.items()}
    assert len(reports['train'].problems) == 2
    assert 'train_0.jpg image without mask' in text['train']
    assert 'mask 5x5 != image 40x30' in text['train']
    assert 'values [9]' in text['val'] and 'unreadable image' in text['val']
    assert 'orphan.png mask without image' in text['test']
    assert reports['test'].damage_pixel_share > 0


def test_masks_painting_damage_255_are_refused(tiny_dataset):
    """0/255 binary masks pass every per-sample check (255 = ignore) and
    would train on background alone: the dataset and the checker say so."""
    for i in range(3):
        mask = np.zeros((30, 40), np.uint8)
        mask[5:15, 5:20] = 255
        write_pair(tiny_dataset, 'train', f'train_{i}', mask=mask, seed=i)
    with pytest.raises(DatasetError, match=r'only 0 and 255.*damage = 1'):
        build(tiny_dataset)
    build(tiny_dataset, split='val')  # ids 0/1: fine
    reports = {r.split: r for r in check_dataset(tiny_dataset)}
    [(path, why)] = reports['train'].problems
    assert path.endswith(osp.join('ann_dir', 'train'))
    assert 'is damage painted 255' in why
    assert not reports['val'].problems
    # one mask with real ids among them: not this mistake
    write_pair(tiny_dataset, 'train', 'train_1', seed=1)
    assert len(build(tiny_dataset)) == 3
