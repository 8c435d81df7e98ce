"""train_short (benchmarks/studies/runs.py), the studies' training runner:
a real 2-iteration run through tools/train.py, and a failing one."""
import os.path as osp

import pytest
from conftest import write_tiny_config

from benchmarks.studies.runs import last_val_metrics, train_short


def test_short_run_shows_progress_and_returns_its_checkpoint(
        tmp_path, demo_converted):
    config = write_tiny_config(
        tmp_path, 'configs/segformer_b0_cardamage_demo.py', demo_converted,
        iters=2)
    lines = []
    ckpt = train_short(config, str(tmp_path / 'run'), 2,
                       tool_args=['--loss', 'ce-dice'], echo=lines.append)
    assert ckpt == str(tmp_path / 'run' / 'iter_2.pth') and osp.isfile(ckpt)
    # mmengine's iteration lines (with ETA) and the final validation
    assert any('Iter(train) [1/2]' in ln and 'eta:' in ln for ln in lines)
    assert any('mIoU' in ln for ln in lines)
    assert 'mIoU' in last_val_metrics(str(tmp_path / 'run'))
    log = (tmp_path / 'run' / 'train_output.log').read_text()
    assert 'Iter(train) [2/2]' in log
    assert 'loss_dice' in log  # tool_args reached tools/train.py


def test_failed_run_names_its_log(tmp_path):
    with pytest.raises(RuntimeError) as err:
        train_short(str(tmp_path / 'missing.py'), str(tmp_path / 'run'), 2,
                    echo=lambda line: None)
    text = str(err.value)
    assert 'missing.py' in text and 'train_output.log' in text
    assert osp.isfile(tmp_path / 'run' / 'train_output.log')
