"""EnsembleSegmentor and tools/ensemble.py on members trained briefly on
the real sample (SegFormer-b0 and DeepLabV3-MobileViT-S: different
normalisation, BGR/RGB order and output strides)."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

from cardamage_mmseg.models import load_frozen_model
from cardamage_mmseg.models.segmentors import FUSION_RULES, EnsembleSegmentor
from cardamage_mmseg.models.segmentors.probs import predict_probs
from cardamage_mmseg.utils.checkpoint import CheckpointMismatchError
from conftest import run_tool, write_ensemble_config

init_default_scope('mmseg')


def image_batch(path, size=None):
    img = Image.open(path).convert('RGB')
    if size:
        img = img.resize(size)
    arr = np.array(img)[:, :, ::-1].copy()  # BGR like LoadImageFromFile
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(
        img_path=path, ori_shape=arr.shape[:2], img_shape=arr.shape[:2]))
    return [torch.from_numpy(arr).permute(2, 0, 1)], [sample]


def member_labels(cfg, ckpt, inputs, samples):
    model, _ = load_frozen_model(cfg, ckpt)
    probs = predict_probs(model, inputs, samples, 'cpu')
    return probs[0].argmax(0)


@pytest.mark.parametrize('rule', FUSION_RULES)
def test_one_and_two_identical_members_equal_the_member(members, rule,
                                                        demo_converted):
    cfg, ckpt = members['b0']
    img = sorted(glob.glob(osp.join(demo_converted, 'img_dir', 'val',
                                    '*.jpg')))[0]
    inputs, samples = image_batch(img)
    expected = member_labels(cfg, ckpt, inputs, samples)
    for n in (1, 2):
        ens = EnsembleSegmentor(
            members=[dict(config=cfg, checkpoint=ckpt)] * n, fusion=rule)
        got = ens.predict(inputs, [s.clone() for s in samples])[0]
        assert torch.equal(got.pred_sem_seg.data[0], expected)


def test_mixed_normalisation_and_sizes_give_original_size(members,
                                                          demo_converted):
    img = sorted(glob.glob(osp.join(demo_converted, 'img_dir', 'val',
                                    '*.jpg')))[1]
    inputs, samples = image_batch(img, size=(101, 67))  # odd, not /32
    ens = EnsembleSegmentor(
        members=[dict(config=c, checkpoint=k) for c, k in members.values()],
        fusion='mean')
    dp = [m.data_preprocessor for m in ens.members]
    assert dp[0].channel_conversion != dp[1].channel_conversion  # BGR/RGB
    assert not torch.equal(dp[0].std, dp[1].std)  # different scaling
    probs = ens.member_probs(inputs, samples)
    assert probs.shape == (1, 2, 2, 67, 101)
    assert torch.allclose(probs.sum(2), torch.ones(1, 2, 67, 101),
                          atol=1e-5)
    out = ens.predict(inputs, samples)[0]
    assert out.pred_sem_seg.data.shape == (1, 67, 101)


def test_batch_of_different_original_sizes(members, demo_converted):
    """A test batch > 1 of photos of different sizes: each image's fused
    mask as when predicted alone; predict_probs itself refuses such a
    batch with a message instead of a torch.stack error."""
    img = sorted(glob.glob(osp.join(demo_converted, 'img_dir', 'val',
                                    '*.jpg')))[2]
    small = image_batch(img, size=(96, 64))
    large = image_batch(img, size=(144, 96))
    ens = EnsembleSegmentor(
        members=[dict(config=c, checkpoint=k) for c, k in members.values()],
        fusion='union')
    alone = [ens.predict(x, [s.clone() for s in samples])[0]
             for x, samples in (small, large)]
    together = ens.predict(small[0] + large[0],
                           [s.clone() for s in small[1] + large[1]])
    for got, want in zip(together, alone):
        assert torch.equal(got.pred_sem_seg.data, want.pred_sem_seg.data)
    assert together[1].pred_sem_seg.data.shape == (1, 96, 144)
    with pytest.raises(ValueError, match='different original sizes'):
        predict_probs(ens.members[0], small[0] + large[0],
                      small[1] + large[1])


def test_clear_errors_before_any_image(members, tmp_path):
    cfg, ckpt = members['b0']
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        EnsembleSegmentor(members=[dict(config=cfg,
                                        checkpoint=str(tmp_path / 'nope.pth'))
                                   ])
    with pytest.raises(ValueError, match='unknown fusion rule'):
        EnsembleSegmentor(members=[dict(config=cfg, checkpoint=ckpt)],
                          fusion='median')
    with pytest.raises(ValueError, match='1 weights for 2 members'):
        EnsembleSegmentor(members=[dict(config=cfg, checkpoint=ckpt)] * 2,
                          weights=[1.0])
    five = dict(config=cfg, checkpoint=ckpt,
                cfg_options={'model.decode_head.num_classes': 5})
    # a 2-class checkpoint does not fit a 5-class head: refused as such
    with pytest.raises(CheckpointMismatchError, match='conv_seg.weight'):
        EnsembleSegmentor(members=[dict(config=cfg, checkpoint=ckpt), five])
    # loaded partly on purpose, the class counts still disagree
    with pytest.raises(ValueError, match='different class counts'):
        EnsembleSegmentor(members=[dict(config=cfg, checkpoint=ckpt),
                                   dict(five, strict=False)])


def test_tools_ensemble_reports_members_and_ensemble(members, tmp_path,
                                                      demo_converted):
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    show, out = str(tmp_path / 'show'), str(tmp_path / 'out')
    res = run_tool('tools/ensemble.py', '--config', c0, c1, '--checkpoint',
                   k0, k1, '--fusion', 'union', '--split', 'val',
                   '--data-root', demo_converted, '--show-dir', show,
                   '--out', out, '--json', str(tmp_path / 'r.json'))
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout
    assert 'tiny_segformer_b0_cardamage' in text
    assert 'tiny_deeplabv3_mobilevit-s_cardamage' in text
    assert '| ensemble union |' in text
    result = json.load(open(tmp_path / 'r.json'))['val']
    assert set(result) == {'tiny_segformer_b0_cardamage',
                           'tiny_deeplabv3_mobilevit-s_cardamage',
                           'ensemble union'}
    # masks as tools/infer.py writes them: palette PNGs of class ids
    masks = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(masks) == 8
    first = Image.open(masks[0])
    assert first.mode == 'P'
    assert first.getpalette()[:6] == [0, 0, 0, 255, 0, 0]
    assert np.array(first).shape == (256, 256)
    assert set(np.unique(np.array(first))) <= {0, 1}
    assert len(glob.glob(osp.join(show, '*.png'))) == 8
    assert 'ensemble on 8 images' in res.stderr  # progress bar


def test_tools_ensemble_gives_every_image_its_own_outputs(
        members, tmp_path, demo_converted):
    """a/x.jpg and b/x.jpg of one split both wrote x.png."""
    import shutil
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    root = tmp_path / 'data'
    stems = sorted(osp.splitext(n)[0] for n in os.listdir(
        osp.join(demo_converted, 'img_dir', 'val')))[:2]
    for sub, stem in zip('ab', stems):
        for kind, ext in (('img_dir', '.jpg'), ('ann_dir', '.png')):
            folder = root / kind / 'val' / sub
            folder.mkdir(parents=True)
            shutil.copy(osp.join(demo_converted, kind, 'val', stem + ext),
                        folder / ('x' + ext))
    show, out = tmp_path / 'show', tmp_path / 'out'
    res = run_tool('tools/ensemble.py', '--config', c0, c1, '--checkpoint',
                   k0, k1, '--split', 'val', '--data-root', str(root),
                   '--show-dir', str(show), '--out', str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    for folder in (out, show):
        assert sorted(str(p.relative_to(folder)) for p in
                      folder.rglob('*.png')) == ['a/x.png', 'b/x.png']


def test_search_costs_one_pass_and_reports_best(members, tmp_path,
                                                demo_converted):
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    res = run_tool('tools/ensemble.py', '--config', c0, c1, '--checkpoint',
                   k0, k1, '--search', '--search-split', 'val', '--split',
                   'val', '--data-root', demo_converted)
    assert res.returncode == 0, res.stderr[-3000:]
    # 5 unweighted rules + 2 weighted rules x 9 weight pairs
    assert 'searching 23 fusion candidates on val (8 images, one pass)' \
        in res.stdout
    assert 'best on val:' in res.stdout
    # exactly two passes over the 8 images: search split + report split
    assert res.stderr.count('ensemble on 8 images') >= 2


def test_tools_test_runs_an_ensemble_config(members, tmp_path,
                                            demo_converted):
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    cfg = write_ensemble_config(tmp_path / 'ens.py', [(c0, k0), (c1, k1)],
                                fusion='weighted_vote', weights=[0.6, 0.4])
    work = str(tmp_path / 'work')
    res = run_tool('tools/test.py', str(cfg), '--work-dir', work,
                   '--show-dir', str(tmp_path / 'show'))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.load(open(sorted(glob.glob(osp.join(work, '*',
                                                       '*.json')))[-1]))
    assert 'mIoU' in metrics and 'IoU.damage' in metrics
    res = run_tool('tools/train.py', str(cfg), '--work-dir', work)
    assert res.returncode != 0 and 'cannot be trained' in res.stderr


def test_member_paths_are_found_from_any_working_directory(
        members, tmp_path, monkeypatch):
    """Member paths were resolved against the working directory only: from
    any folder but the repo root an ensemble config failed."""
    import shutil

    from cardamage_mmseg.utils.config import load_config
    cfg, ckpt = members['b0']
    home = tmp_path / 'ensembles'
    home.mkdir()
    shutil.copy(cfg, home / 'member.py')  # beside the ensemble config
    shutil.copy(ckpt, home / 'member.pth')
    ens = write_ensemble_config(home / 'ens.py', [('member.py',
                                                   'member.pth')])
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model_cfg = load_config(ens).model
    located = EnsembleSegmentor._locate(0, dict(model_cfg.members[0]),
                                        model_cfg.config_dir)
    assert located['config'] == str(home / 'member.py')
    assert located['checkpoint'] == str(home / 'member.pth')
    # a checkpoint relative to the working directory wins (work_dirs/...)
    (elsewhere / 'member.pth').write_bytes(b'x')
    located = EnsembleSegmentor._locate(0, dict(model_cfg.members[0]),
                                        model_cfg.config_dir)
    assert located['checkpoint'] == str(elsewhere / 'member.pth')
    with pytest.raises(FileNotFoundError) as info:
        EnsembleSegmentor._locate(1, dict(config='member.py',
                                          checkpoint='work/x.pth'),
                                  str(home))
    assert 'ensemble member 1: checkpoint file work/x.pth not found' in \
        str(info.value)
    assert str(elsewhere / 'work' / 'x.pth') in str(info.value)
    assert str(home / 'work' / 'x.pth') in str(info.value)
    # the shipped configs name their members relative to configs/
    shipped = load_config(osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), 'configs',
        'ensemble_dpt_segformer_cardamage.py')).model
    for member in shipped.members:
        EnsembleSegmentor._locate(0, dict(member, checkpoint=ckpt),
                                  shipped.config_dir)
