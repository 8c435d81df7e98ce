"""tools/infer.py keeps its promises: stale outputs are redone, user files
are never overwritten, one failing photo never stops the run and the report
is always written, a full disk stops cleanly (fault injection)."""
import errno
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.cli.main import run
from cardamage_mmseg.core import files as core_files
from conftest import DEMO, load_tool


@pytest.fixture(scope='module')
def infer():
    return load_tool('tools/infer.py')


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in ('1.jpg', '4.jpg', '31.jpg'):
        img = Image.open(osp.join(DEMO, 'val', name)).convert('RGB')
        img.resize((128, 96)).save(folder / name)
    return folder


def _rows(out):
    with open(osp.join(out, 'report.json')) as f:
        return {osp.basename(r['file']): r for r in json.load(f)}


def test_reuse_only_for_the_same_photo_and_model(infer, members, photos,
                                                 tmp_path, capsys):
    """Replacing a photo under the same name, or changing the checkpoint,
    used to give '0 image(s) segmented, N already done' and the old
    width/height in the report."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    assert run(infer.main, [cfg, ckpt, str(photos), '--out', out]) == 0
    assert '3 image(s) segmented' in capsys.readouterr().out
    # the same run again: everything reused
    assert run(infer.main, [cfg, ckpt, str(photos), '--out', out]) == 0
    assert '3 already done' in capsys.readouterr().out
    # another photo under the same name (other size, other mtime)
    Image.open(osp.join(DEMO, 'val', '47.jpg')).convert('RGB').resize(
        (80, 60)).save(photos / '4.jpg')
    assert run(infer.main, [cfg, ckpt, str(photos), '--out', out]) == 0
    assert '1 image(s) segmented' in capsys.readouterr().out
    assert (_rows(out)['4.jpg']['width'], _rows(out)['4.jpg']['height']) \
        == (80, 60)
    # another checkpoint file (a copy: another identity) redoes all
    other = str(tmp_path / 'other.pth')
    shutil.copy(ckpt, other)
    assert run(infer.main, [cfg, other, str(photos), '--out', out]) == 0
    assert '3 image(s) segmented' in capsys.readouterr().out
    # other settings that change masks or reports redo all
    assert run(infer.main, [cfg, other, str(photos), '--out', out,
                            '--tta']) == 0
    assert '3 image(s) segmented' in capsys.readouterr().out


def test_out_inside_the_input_folder_is_refused(infer, members, photos,
                                                capsys):
    """--out photos re-segmented its own outputs on every run (2 -> 4 ->
    8) and overwrote a user's photos/masks/<name>.png."""
    cfg, ckpt = members['b0']
    (photos / 'masks').mkdir()
    mine = photos / 'masks' / '1.png'
    Image.new('L', (5, 5), 7).save(mine)
    before = mine.read_bytes()
    for out in (str(photos), str(photos / 'results')):
        assert run(infer.main, [cfg, ckpt, str(photos), '--out', out]) == 2
        assert 'inside the input folder' in capsys.readouterr().err
    assert mine.read_bytes() == before
    assert not (photos / 'results').exists()


def test_a_failing_photo_is_skipped_and_the_report_written(
        infer, members, photos, tmp_path, capsys, monkeypatch):
    """Any per-photo failure, the model's included, used to end the run
    with a traceback and no report."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    (photos / 'broken.jpg').write_bytes(b'not a jpeg')
    Image.new('RGB', (300, 200)).save(photos / 'huge.png')
    from cardamage_mmseg.apis import inference  # the tool's class
    original = inference.DamageSegmenter.predict_arrays

    def flaky(self, images, sources):
        if any(s.endswith('31.jpg') for s in sources):
            raise RuntimeError('CUDA out of memory (simulated)')
        return original(self, images, sources)

    monkeypatch.setattr(inference.DamageSegmenter, 'predict_arrays', flaky)
    code = run(infer.main, [cfg, ckpt, str(photos), '--out', out,
                            '--batch-size', '3', '--max-pixels', '50000'])
    printed = capsys.readouterr().out
    assert code == 0
    assert '2 image(s) segmented' in printed and '3 failed' in printed
    rows = _rows(out)
    assert {k: r['status'] for k, r in rows.items()} == {
        '1.jpg': 'ok', '4.jpg': 'ok', '31.jpg': 'error',
        'broken.jpg': 'error', 'huge.png': 'error'}
    assert 'out of memory' in rows['31.jpg']['error']
    assert 'pixel limit' in rows['huge.png']['error']
    assert osp.isfile(osp.join(out, 'masks', '1.png'))


def test_a_full_disk_stops_with_a_message_and_a_report(
        infer, members, photos, tmp_path, capsys, monkeypatch):
    """On a full disk a truncated file was renamed into place and the run
    ended in an OSError traceback with no report."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    real_write = os.write
    state = dict(calls=0)

    def short_write(fd, data):
        state['calls'] += 1
        if state['calls'] == 4:  # the second photo's mask: half, then 0
            return real_write(fd, bytes(data)[:len(data) // 2])
        if state['calls'] == 5:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(core_files.os, 'write', short_write)
    code = run(infer.main, [cfg, ckpt, str(photos), '--out', out])
    captured = capsys.readouterr()
    assert code == 1
    assert 'No space left on device' in captured.err
    assert '1 image(s) segmented' in captured.out
    rows = _rows(out)  # the report of what finished
    assert [r['status'] for r in rows.values()] == ['ok']
    left = sorted(os.listdir(osp.join(out, 'masks')))
    assert left == ['1.png']  # no truncated mask, no temporary file
    Image.open(osp.join(out, 'masks', '1.png')).load()


def test_short_writes_never_reach_the_final_name(tmp_path, monkeypatch):
    target = tmp_path / 'a.bin'
    target.write_bytes(b'old')
    real_write = os.write
    monkeypatch.setattr(core_files.os, 'write',
                        lambda fd, data: real_write(fd, bytes(data)[:3]) if
                        len(data) > 3 else 0)
    with pytest.raises(OSError, match='No space') as info:
        core_files.atomic_write_bytes(str(target), b'0123456789')
    assert info.value.filename == str(target)
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.bin']
    monkeypatch.undo()
    core_files.atomic_write_bytes(str(target), np.arange(5).tobytes())
    assert target.read_bytes() == np.arange(5).tobytes()
