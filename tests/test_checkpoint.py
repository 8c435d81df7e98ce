"""Safe checkpoint loading: allow-listed types load, pickles that run code
do not, truncated files are named."""
import os

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import cardamage_mmseg.register  # noqa: F401  (registers the safe loaders)
from cardamage_mmseg.utils import (CorruptCheckpointError,
                                   UnsafeCheckpointError,
                                   load_checkpoint_file)

MARKER = 'cardamage_pwned'


class Exploit:
    """Unpickling this would create a file (runs os.system)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}',))


def test_loader_is_registered_for_local_and_http():
    assert CheckpointLoader._get_checkpoint_loader('/x.pth').__module__ == \
        'cardamage_mmseg.utils.checkpoint'
    assert CheckpointLoader._get_checkpoint_loader(
        'https://a/b.pth').__module__ == 'cardamage_mmseg.utils.checkpoint'


def test_mmengine_style_checkpoint_loads(tmp_path):
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('ckpt_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 3)
    ckpt = dict(
        meta=dict(epoch=0, iter=3, seed=np.int64(7), mmengine_version='x',
                  dataset_meta=dict(classes=('background', 'damage'))),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        optimizer={'state': {}, 'param_groups': [{'lr': 0.1}]},
        param_schedulers=[{'last_epoch': 3}])
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    path = tmp_path / 'ok.pth'
    torch.save(ckpt, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['seed'] == 7
    assert loaded['message_hub']['log_scalars']['train/loss'].current() \
        == 0.5
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


@pytest.mark.parametrize('wrapped', [True, False])
def test_plain_state_dicts_load(tmp_path, wrapped):
    sd = {'backbone.w': torch.arange(4.0)}
    path = tmp_path / 'sd.pth'
    torch.save({'state_dict': sd} if wrapped else sd, path)
    loaded = load_checkpoint_file(path)
    got = loaded['state_dict'] if wrapped else loaded
    assert torch.equal(got['backbone.w'], sd['backbone.w'])


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_code_running_pickle_is_refused_and_does_not_run(tmp_path, fmt):
    marker = tmp_path / MARKER
    path = tmp_path / 'evil.pth'
    payload = {'state_dict': {}, 'meta': Exploit(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=(fmt == 'zip'))
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(str(path), map_location='cpu')
    assert str(path) in str(err.value)
    assert 'allow-list' in str(err.value)
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'full.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
    data = path.read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=r'cut\.pth.*truncated'):
        load_checkpoint_file(cut)
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'\x00garbage')
    with pytest.raises(CorruptCheckpointError, match=r'junk\.pth'):
        load_checkpoint_file(junk)
    with pytest.raises(FileNotFoundError, match=r'nope\.pth'):
        load_checkpoint_file(tmp_path / 'nope.pth')



class GetattrPayload:
    """Pickles as getattr(numpy.ndarray, 'tofile'): a step towards writing
    arbitrary files, which a plain getattr allow-list would permit."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_getattr_is_restricted_to_history_buffer(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': GetattrPayload()}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'getattr\.pth.*not allowed'):
        load_checkpoint_file(path)


def test_check_state_dict_names_every_kind_of_mismatch():
    from cardamage_mmseg.utils.checkpoint import (CheckpointMismatchError,
                                                  check_state_dict,
                                                  state_dict_of)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    good = model.state_dict()
    check_state_dict(model, state_dict_of({'state_dict': good}), 'a.pth',
                     'c.py')
    ddp = {f'module.{k}': v for k, v in good.items()}  # saved under DDP
    check_state_dict(model, state_dict_of(ddp), 'a.pth', 'c.py')
    with pytest.raises(CheckpointMismatchError,
                       match=r'a\.pth does not fit the model of c\.py: '
                       r'4 missing key\(s\) \(first: 0\.weight'):
        check_state_dict(model, {}, 'a.pth', 'c.py')
    bad = dict(good, extra=torch.zeros(1))
    bad['1.weight'] = torch.zeros(5, 3)
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict(model, bad, 'a.pth', 'c.py')
    assert '1 unexpected key(s) (first: extra)' in str(err.value)
    assert '1.weight (5, 3) (model: (1, 3))' in str(err.value)
    assert '--partial-checkpoint' in str(err.value)


def test_offline_pretrained_download_says_where_to_put_the_file(
        tmp_path, monkeypatch):
    """Without internet, training ended in a raw URLError traceback."""
    import urllib.error

    import torch.hub

    from cardamage_mmseg.utils.checkpoint import DownloadError, \
        _load_from_http

    def offline(url, dst, progress=True):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name '
                                    'resolution')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/' \
          'segformer/mit_b3_20220624-13b1141c.pth'
    with pytest.raises(DownloadError) as info:
        _load_from_http(url)
    text = str(info.value)
    assert url in text and 'name resolution' in text
    assert str(tmp_path / 'hub' / 'checkpoints' /
               'mit_b3_20220624-13b1141c.pth') in text
    assert 'init_cfg.checkpoint=PATH' in text and 'init_cfg=None' in text
