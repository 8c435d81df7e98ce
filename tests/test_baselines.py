"""Every baseline of the study: trains two iterations on the real sample,
checkpoints, tests with overlays; right output for 2 and 5 classes; clear
errors for missing optional packages."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

from cardamage_mmseg.cli.config import load_tool_config
from cardamage_mmseg.utils import config as config_utils
from cardamage_mmseg.utils.config import ConfigError
from cardamage_mmseg.zoo import BASELINES, build_baseline
from conftest import REPO, run_tool, write_tiny_config

init_default_scope('mmseg')


#: rows whose training run is in the slow suite: they train the same
#: modules as a default row (SegformerHFHead: tests/test_hf_bridge.py;
#: HFSegmentor: tests/test_hf_segmentor.py trains a small DPT-hybrid)
SLOW_TRAINING = ('segformer_hf_b3', 'dpt-hybrid')


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TRAINING else n
    for n in sorted(BASELINES)])
def test_baseline_trains_checkpoints_and_tests(name, tmp_path,
                                               demo_converted):
    base = BASELINES[name]
    cfg = write_tiny_config(tmp_path, base.config, demo_converted,
                            test_images=2)
    work = str(tmp_path / 'work')
    res = run_tool('tools/train.py', cfg, '--work-dir', work,
                   '--cfg-options', *base.offline)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    show = str(tmp_path / 'show')
    res = run_tool('tools/test.py', cfg, ckpt, '--work-dir', work,
                   '--show-dir', show, '--cfg-options', *base.offline)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.load(open(sorted(glob.glob(osp.join(work, '*',
                                                      '*.json')))[-1]))
    assert 0.0 <= result['mIoU'] <= 100.0
    assert len(glob.glob(osp.join(show, 'vis_data', 'vis_image',
                                  '*.png'))) == 2


@pytest.mark.parametrize('label_set,classes', [('binary', 2), ('aihub', 5)])
@pytest.mark.parametrize('name', sorted(BASELINES))
def test_output_shape_and_classes(name, label_set, classes):
    from mmseg.structures import SegDataSample
    model = build_baseline(name, REPO, label_set).eval()
    sample = SegDataSample(metainfo=dict(img_shape=(64, 96),
                                         ori_shape=(64, 96),
                                         pad_shape=(64, 96)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 64, 96), [sample])[0]
    assert out.seg_logits.data.shape == (classes, 64, 96)
    assert out.pred_sem_seg.data.shape == (1, 64, 96)
    assert int(out.pred_sem_seg.data.max()) < classes


@pytest.mark.parametrize('name,package', [
    ('mask2former_swin-t', 'mmdet'),
    ('deeplabv3_mobilevitv2', 'timm'),
    ('deeplabv3_mobilevit-s', 'mmpretrain'),
])
def test_missing_optional_package_is_a_clear_error(name, package,
                                                   monkeypatch):
    real = config_utils.importlib.util.find_spec
    monkeypatch.setattr(config_utils.importlib.util, 'find_spec',
                        lambda mod, *a: None if mod == package else
                        real(mod, *a))
    with pytest.raises(ConfigError) as err:
        load_tool_config(osp.join(REPO, BASELINES[name].config))
    msg = str(err.value)
    assert f'{package}: needed by' in msg and 'pip install' in msg


def test_every_config_file_is_in_the_zoo_or_known():
    configs = {osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '*_cardamage.py'))}
    assert {b.config for b in BASELINES.values()} <= configs


def test_head_and_data_class_counts_must_agree(tmp_path):
    """A head with fewer classes than its data crashes inside the loss (a
    device-side assert on a GPU); more trains silently on the wrong task.
    load_tool_config stops both, naming the setting; --label-set sets both
    sides, a distiller's student included."""
    seg = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
    with pytest.raises(ConfigError, match=r'decode_head.num_classes=2 but '
                       r'train_dataloader has 5 classes'):
        load_tool_config(seg, {'train_dataloader.dataset.type':
                               'AIHubCarDamageDataset'})
    with pytest.raises(ConfigError, match=r'num_classes=5 but '
                       r'train_dataloader has 2'):
        load_tool_config(seg, {'model.decode_head.num_classes': 5})
    assert load_tool_config(seg, label_set='aihub').model.decode_head[
        'num_classes'] == 5
    distill = osp.join(REPO, 'configs', 'distill_segformer_b3-b0_cardamage.py')
    cfg = load_tool_config(distill, label_set='aihub')
    assert cfg.model.student.decode_head.num_classes == 5
    upernet = osp.join(REPO, 'configs', 'upernet_swin-t_cardamage.py')
    with pytest.raises(ConfigError, match=r'auxiliary_head.num_classes=2'):
        load_tool_config(upernet, {'model.decode_head.num_classes': 5,
                                   'train_dataloader.dataset.type':
                                   'AIHubCarDamageDataset',
                                   'val_dataloader.dataset.type':
                                   'AIHubCarDamageDataset',
                                   'test_dataloader.dataset.type':
                                   'AIHubCarDamageDataset'})
