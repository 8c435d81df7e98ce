"""tools/infer.py keeps its promises: stale outputs are redone, user files
are never overwritten, one failing photo never stops the run and the report
is always written, a full disk stops cleanly (fault injection)."""
import errno
import json
import os
import os.path as osp
import shutil
import time

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


@pytest.mark.parametrize('stages', [['--workers', '1', '--writers', '1'],
                                    ['--lockstep', '2']])
def test_a_failing_photo_is_skipped_and_the_report_written(
        infer, members, photos, tmp_path, capsys, monkeypatch, stages):
    """Any per-photo failure, the model's included, used to end the run
    with a traceback and no report (processes and lockstep threads)."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    (photos / 'broken.jpg').write_bytes(b'not a jpeg')
    Image.new('RGB', (300, 200)).save(photos / 'huge.png')
    from cardamage_mmseg.apis import inference  # the tool's class
    original = inference.DamageSegmenter.forward

    def flaky(self, prepared):
        if any(p.source.endswith('31.jpg') for p in prepared):
            raise RuntimeError('CUDA out of memory (simulated)')
        return original(self, prepared)

    monkeypatch.setattr(inference.DamageSegmenter, 'forward', flaky)
    code = run(infer.main, [cfg, ckpt, str(photos), '--out', out,
                            '--batch-size', '3', '--max-pixels', '50000',
                            *stages])
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


def test_lockstep_writes_what_one_process_writes(infer, members, photos,
                                                tmp_path):
    """Lockstep threads (the CPU default) and the serial path give the same
    report rows and byte-identical masks and overlays, in input order."""
    cfg, ckpt = members['b0']
    outs = {}
    for stages in (['--workers', '0', '--writers', '0'], ['--lockstep', '2'],
                   []):
        out = str(tmp_path / f'out{len(outs)}')
        assert run(infer.main, [cfg, ckpt, str(photos), '--out', out,
                                '--batch-size', '2', *stages]) == 0
        outs[out] = stages
    serial, *others = outs
    with open(osp.join(serial, 'report.json')) as f:
        order = [r['file'] for r in json.load(f)]
    assert [osp.basename(p) for p in order] == ['1.jpg', '31.jpg', '4.jpg']
    for other in others:
        with open(osp.join(other, 'report.json')) as f:
            assert json.load(f) == _rows_list(serial)
        for sub in ('masks', 'overlays'):
            names = sorted(os.listdir(osp.join(serial, sub)))
            assert names == sorted(os.listdir(osp.join(other, sub)))
            for name in names:
                with open(osp.join(serial, sub, name), 'rb') as a, open(
                        osp.join(other, sub, name), 'rb') as b:
                    assert a.read() == b.read(), (other, sub, name)


def _rows_list(out):
    with open(osp.join(out, 'report.json')) as f:
        return json.load(f)


def test_default_lockstep_on_the_cpu_only():
    from cardamage_mmseg.apis.folder import default_lockstep, usable_cores
    assert default_lockstep('cpu', None, None) == usable_cores() >= 1
    assert default_lockstep('cuda:0', None, None) == 0
    assert default_lockstep('cpu', 1, None) == 0  # processes asked for
    assert default_lockstep('cpu', None, 0) == 0


def test_lockstep_and_processes_together_are_refused(infer, members, photos,
                                                     tmp_path, capsys):
    cfg, ckpt = members['b0']
    with pytest.raises(SystemExit) as exit_:
        infer.main([cfg, ckpt, str(photos), '--out', str(tmp_path / 'o'),
                    '--lockstep', '2', '--writers', '1'])
    assert exit_.value.code == 2 and '--lockstep' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_a_full_disk_stops_with_a_message_and_a_report(
        infer, members, photos, tmp_path, capsys, monkeypatch):
    """On a full disk a truncated file was renamed into place and the run
    ended in an OSError traceback with no report."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    real_write = os.write
    reports = osp.join(out, 'reports')

    def short_write(fd, data):
        """Once the first photo is written, the per-photo folders are
        full: half of a write, then ENOSPC (decided from the files, so
        the same in a forked writer process)."""
        folder = osp.basename(osp.dirname(os.readlink(f'/proc/self/fd/{fd}')))
        if folder in ('masks', 'overlays', 'reports') and \
                osp.isdir(reports) and any(
                    n.endswith('.json') for n in os.listdir(reports)):
            if os.fstat(fd).st_size == 0 and len(data) > 1:
                return real_write(fd, bytes(data)[:len(data) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(core_files.os, 'write', short_write)
    # in this process: the patch holds there (writer processes start
    # clean); their errors come back the same way
    code = run(infer.main, [cfg, ckpt, str(photos), '--out', out,
                            '--writers', '0'])
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


def test_a_crashed_worker_ends_the_run_with_the_report(
        infer, members, photos, tmp_path, capsys, monkeypatch):
    """A data-loader worker that dies (killed, out of memory) ends the run
    cleanly: the photos that finished are in the report, in input order."""
    cfg, ckpt = members['b0']
    out = str(tmp_path / 'out')
    from cardamage_mmseg.apis import inference
    original = inference.DamageSegmenter.prepare_file

    def dies_on_4(self, path, *args):
        if path.endswith('4.jpg'):  # the last of 1, 31, 4
            time.sleep(1)  # the photos before it have left the worker
            os._exit(3)  # in the worker process
        return original(self, path, *args)

    monkeypatch.setattr(inference.DamageSegmenter, 'prepare_file',
                        dies_on_4)
    code = run(infer.main, [cfg, ckpt, str(photos), '--out', out,
                            '--workers', '1', '--writers', '1'])
    captured = capsys.readouterr()
    assert code == 1 and 'exited unexpectedly' in captured.err
    assert list(_rows(out)) == ['1.jpg', '31.jpg']
    from cardamage_mmseg.apis import segment_files
    items = [(str(photos / n), 'again_' + n[:-4]) for n in
             ('1.jpg', '31.jpg', '4.jpg')]
    again = segment_files(infer_segmenter(cfg, ckpt), items, out,
                          num_workers=1, num_writers=0)
    assert again.stopped and again.indices == [0, 1]  # where each row is
    assert osp.isfile(osp.join(out, 'masks', '31.png'))


def test_a_write_error_in_a_writer_process_fails_that_photo(
        infer, members, photos, tmp_path, capsys):
    """An output that cannot be written (here: masks/ is a file) is an
    error row per photo, from a writer process; the run goes on."""
    cfg, ckpt = members['b0']
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'masks').write_text('in the way')
    assert run(infer.main, [cfg, ckpt, str(photos), '--out', str(out),
                            '--writers', '1']) == 0
    rows = _rows(str(out))
    assert [r['status'] for r in rows.values()] == ['error'] * 3
    assert all('cannot write its outputs' in r['error']
               for r in rows.values())


def infer_segmenter(cfg, ckpt):
    from cardamage_mmseg.apis import DamageSegmenter
    return DamageSegmenter(cfg, ckpt)


@pytest.mark.slow  # a real process group and a real signal
@pytest.mark.parametrize('stages', [['--workers', '1', '--writers', '1'],
                                    ['--lockstep', '2']])
def test_ctrl_c_ends_the_run_with_the_report_and_a_rerun_finishes(
        members, tmp_path, stages):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it:
    the main process, its data-loader worker and its writer) ends the run
    with exit code 130 and a report of exactly the photos whose outputs
    are complete; no half-written file is left, and the same command again
    reuses those and does the rest."""
    import signal
    import subprocess
    import sys
    cfg, ckpt = members['b0']
    folder = tmp_path / 'photos'
    folder.mkdir()
    names = []
    for k in range(120):  # enough that the run is still going
        src = ('1.jpg', '4.jpg', '31.jpg', '47.jpg')[k % 4]
        names.append(f'{k:03d}_{src}')
        shutil.copy(osp.join(DEMO, 'val', src), folder / names[-1])
    out = tmp_path / 'out'
    cmd = [sys.executable, 'tools/infer.py', cfg, ckpt, str(folder),
           '--out', str(out), *stages]
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    proc = subprocess.Popen(cmd, cwd=repo, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 300
    while not (out / 'masks').is_dir() or len(os.listdir(out / 'masks')) < 3:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert 'stopped by the user (Ctrl-C)' in stderr
    rows = _rows(str(out))
    assert 3 <= len(rows) < len(names)  # really interrupted mid-run
    masks = sorted(os.listdir(out / 'masks'))
    assert [n[:-4] + '.png' for n in sorted(rows)] == masks
    for name in masks:  # complete files only
        assert Image.open(out / 'masks' / name).size == Image.open(
            folder / (name[:-4] + '.jpg')).size
    leftovers = [n for _, _, files in os.walk(out) for n in files
                 if n.startswith('.') or n.endswith(('.tmp', '.part'))]
    assert not leftovers
    done = len(rows)
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f'{done} already done' in res.stdout
    assert sorted(_rows(str(out))) == sorted(names)
