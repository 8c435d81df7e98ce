"""A checkpoint that does not fit its config stops inference, evaluation,
ensembles and teachers with a message naming the files and the first keys
(mmengine's strict=False loaded it, left random weights and logged one
line); --partial-checkpoint / strict=False still load it on purpose."""
import os.path as osp

import pytest
import torch

from cardamage_mmseg.apis import DamageSegmenter
from cardamage_mmseg.models.segmentors import EnsembleSegmentor
from cardamage_mmseg.utils.checkpoint import CheckpointMismatchError
from cardamage_mmseg.zoo import build_baseline
from conftest import DEMO, REPO, run_tool

CONFIG = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
PHOTO = osp.join(DEMO, 'val', '1.jpg')


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """(empty, 5-class head, renamed keys, good) checkpoints of b0."""
    folder = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    good = build_baseline('segformer_b0').state_dict()
    paths = {}
    for name, state in (
            ('empty', {}),
            ('aihub', build_baseline('segformer_b0',
                                     label_set='aihub').state_dict()),
            ('renamed', {f'net.{k}': v for k, v in good.items()}),
            ('good', good)):
        paths[name] = str(folder / f'{name}.pth')
        torch.save({'state_dict': state}, paths[name])
    return paths


@pytest.mark.parametrize('name,expected', [
    ('empty', 'missing key(s) (first: backbone.'),
    ('aihub', 'of another shape (first: decode_head.conv_seg.weight '
              '(5, 256, 1, 1) (model: (2, 256, 1, 1))'),
    ('renamed', 'unexpected key(s) (first: net.backbone.'),
])
def test_damage_segmenter_refuses_a_checkpoint_that_does_not_fit(
        checkpoints, name, expected):
    with pytest.raises(CheckpointMismatchError) as err:
        DamageSegmenter(CONFIG, checkpoints[name])
    message = str(err.value)
    assert checkpoints[name] in message and CONFIG in message
    assert expected in message


def test_partial_loading_is_still_possible(checkpoints):
    seg = DamageSegmenter(CONFIG, checkpoints['empty'], strict=False)
    [result] = seg(PHOTO)
    assert result.mask.ndim == 2
    DamageSegmenter(CONFIG, checkpoints['good'])  # a fitting one loads


def test_ensemble_member_and_its_switch(checkpoints):
    members = [dict(config=CONFIG, checkpoint=checkpoints['good']),
               dict(config=CONFIG, checkpoint=checkpoints['empty'])]
    with pytest.raises(CheckpointMismatchError, match='empty.pth'):
        EnsembleSegmentor(members=members)
    members[1]['strict'] = False
    assert len(EnsembleSegmentor(members=members).members) == 2
    # a member may name a packaged config, as load_config reads it
    packaged = dict(config='cardamage_mmseg::segformer_b0_cardamage.py',
                    checkpoint=checkpoints['good'])
    assert len(EnsembleSegmentor(members=[packaged]).members) == 1


def test_tools_stop_with_exit_code_2(checkpoints, tmp_path):
    res = run_tool('tools/infer.py', CONFIG, checkpoints['empty'], PHOTO,
                   '--out', str(tmp_path / 'out'))
    assert res.returncode == 2, res.stderr[-3000:]
    assert 'does not fit the model of' in res.stderr
    assert 'Traceback' not in res.stderr
    assert not (tmp_path / 'out' / 'masks').exists()
    res = run_tool('tools/infer.py', CONFIG, checkpoints['empty'], PHOTO,
                   '--out', str(tmp_path / 'out'), '--partial-checkpoint')
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_tool('tools/test.py', CONFIG, checkpoints['aihub'],
                   '--work-dir', str(tmp_path / 'work'))
    assert res.returncode == 2, res.stderr[-3000:]
    assert 'decode_head.conv_seg.weight (5, 256, 1, 1)' in res.stderr
