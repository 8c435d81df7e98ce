import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')
sys.path.insert(0, REPO)
os.environ.setdefault('OMP_NUM_THREADS', '2')


def write_pair(root, split, stem, size=(40, 30), mask=None, num_classes=2,
               seed=0):
    """Write img_dir/<split>/<stem>.jpg and ann_dir/<split>/<stem>.png."""
    w, h = size
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'img_dir', split)
    ann_dir = osp.join(root, 'ann_dir', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
        osp.join(img_dir, stem + '.jpg'))
    if mask is None:
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4:h // 2, w // 4:w // 2] = num_classes - 1
    Image.fromarray(mask).save(osp.join(ann_dir, stem + '.png'))
    return osp.join(img_dir, stem + '.jpg'), osp.join(ann_dir, stem + '.png')


@pytest.fixture
def tiny_dataset(tmp_path):
    root = str(tmp_path / 'car_damage')
    for split in ('train', 'val', 'test'):
        for i in range(3):
            write_pair(root, split, f'{split}_{i}', seed=i)
    return root


@pytest.fixture(scope='session')
def demo_converted(tmp_path_factory):
    """The real sample converted at 256 px (train and val)."""
    from cardamage_mmseg.datasets.converters import (load_via_entries,
                                                     run_conversion)
    out = str(tmp_path_factory.mktemp('demo') / 'car_damage_demo')
    for split in ('train', 'val'):
        folder = osp.join(DEMO, split)
        entries, skipped = load_via_entries(
            osp.join(folder, 'via_region_data.json'), folder, split=split)
        assert not skipped
        run_conversion(entries, out, size=256, nproc=1)
    return out


TINY_TEMPLATE = '''
_base_ = [{base!r}]
data_root = {data_root!r}
crop_size = ({crop}, {crop})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='RandomResize', scale=({crop2}, {crop2}), ratio_range=(0.9, 1.1),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({crop}, {crop}), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs')
]
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root,
                                     pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root,
                                   pipeline=test_pipeline))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root,
                                    pipeline=test_pipeline,
                                    indices={test_images},
                                    data_prefix=dict(img_path='img_dir/val',
                                                     seg_map_path='ann_dir/val')))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False,
                        begin=0, end={iters})]
train_cfg = dict(max_iters={iters}, val_interval={val_interval})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={iters}, save_best=None))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
{extra}
'''


def write_tiny_config(folder, base, data_root, crop=64, iters=2, extra='',
                      test_images=None, validate=False):
    """A child of ``base`` that trains ``iters`` iterations on small crops
    (no validation unless asked; test on the first ``test_images`` val
    images, or all)."""
    path = osp.join(str(folder), 'tiny_' + osp.basename(base))
    with open(path, 'w') as f:
        f.write(TINY_TEMPLATE.format(
            base=osp.join(REPO, base) if not osp.isabs(base) else base,
            data_root=data_root, crop=crop, crop2=crop * 2, iters=iters,
            extra=extra, test_images=test_images,
            val_interval=iters if validate else 10**6))
    return path


def write_ensemble_config(path, members, fusion='mean', weights=None):
    """An ensemble config at ``path`` over ``members`` [(config, ckpt)],
    inheriting the first member's data settings."""
    entries = []
    for i, (cfg, ckpt) in enumerate(members):
        weight = f', weight={weights[i]!r}' if weights else ''
        entries.append(f'dict(config={cfg!r}, checkpoint={ckpt!r}{weight})')
    with open(path, 'w') as f:
        f.write(f"_base_ = [{members[0][0]!r}]\n"
                f"model = dict(_delete_=True, type='EnsembleSegmentor', "
                f"fusion={fusion!r},\n             members=["
                + ',\n                      '.join(entries) + '])\n')
    return str(path)


def run_tool(*args, timeout=600, env=None):
    import subprocess
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=full_env)


@pytest.fixture(scope='session')
def members(tmp_path_factory, demo_converted):
    """Two members trained 2 iterations on the real sample: SegFormer-b0
    (ImageNet mean/std, RGB) and DeepLabV3-MobileViT-S ([0, 1], BGR)."""
    out = {}
    root = tmp_path_factory.mktemp('members')
    for name, base in (('b0', 'configs/segformer_b0_cardamage.py'),
                       ('mvit', 'configs/deeplabv3_mobilevit-s_cardamage.py')):
        folder = root / name
        folder.mkdir()
        cfg = write_tiny_config(folder, base, demo_converted,
                                extra='model = dict(backbone=dict('
                                'init_cfg=None))\n')
        work = str(folder / 'work')
        res = run_tool('tools/train.py', cfg, '--work-dir', work)
        assert res.returncode == 0, res.stderr[-2000:]
        out[name] = (cfg, osp.join(work, 'iter_2.pth'))
    return out


def load_tool(relpath):
    """A tool script (tools/infer.py, ...) as a module, to call its
    ``main(argv)`` in this process (no interpreter start per call)."""
    import importlib.util
    path = osp.join(REPO, relpath)
    name = 'tool_' + osp.splitext(relpath)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def val_photos(tmp_path_factory):
    """Four real photos of the sample, smaller (the tiny configs resize to
    64 anyway), one of them portrait."""
    folder = tmp_path_factory.mktemp('val_photos')
    for name in ('1.jpg', '4.jpg', '31.jpg', '47.jpg'):
        img = Image.open(osp.join(DEMO, 'val', name)).convert('RGB')
        img = img.resize((320, 240))
        if name == '31.jpg':
            img = img.transpose(Image.Transpose.ROTATE_90)
        img.save(folder / name, quality=95)
    return folder


@pytest.fixture(scope='session')
def exported_models(members, val_photos, tmp_path_factory):
    """The members b0 (RGB, ImageNet mean/std) and MobileViT-S (BGR,
    [0, 1]) exported and verified by tools/export.py: {name: .onnx}."""
    pytest.importorskip('onnx')
    from cardamage_mmseg.cli.main import run
    export = load_tool('tools/export.py')
    out = {}
    folder = tmp_path_factory.mktemp('onnx')
    for name in ('b0', 'mvit'):
        cfg, ckpt = members[name]
        path = str(folder / f'{name}.onnx')
        assert run(export.main, [cfg, ckpt, '--out', path, '--verify-dir',
                                 str(val_photos)]) == 0
        out[name] = path
    return out
