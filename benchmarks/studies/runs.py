"""Short training runs through ``tools/train.py`` for the studies in
``benchmarks/studies/`` (one subprocess per run, so runs cannot leak state
into each other), with mmengine's progress lines shown as they come, and
the metrics they logged."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from collections import deque
from typing import Callable, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the lines of mmengine's log worth echoing: iterations with ETA, metrics
PROGRESS_MARKS = ('Iter(train)', 'Iter(val)', 'mIoU')


def short_train_args(iters: int) -> list:
    """``--cfg-options`` that train ``iters`` iterations, then validate and
    save one checkpoint (``iter_<iters>.pth``)."""
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}']


def train_short(config: str, work_dir: str, iters: int,
                tool_args: Sequence[str] = (),
                cfg_options: Sequence[str] = (),
                echo: Callable[[str], None] = print) -> str:
    """Train ``config`` for ``iters`` iterations into ``work_dir``; returns
    the checkpoint's path. The whole output goes to
    ``work_dir/train_output.log``; progress lines go to ``echo``. A failed
    run raises RuntimeError with the end of that log."""
    os.makedirs(work_dir, exist_ok=True)
    log_path = osp.join(work_dir, 'train_output.log')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
           '--work-dir', work_dir, *tool_args, '--cfg-options',
           *short_train_args(iters), *cfg_options]
    tail = deque(maxlen=40)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            tail.append(line)
            if any(mark in line for mark in PROGRESS_MARKS):
                echo('    ' + line.rstrip().split(' - mmengine - INFO - ')[-1])
    if proc.returncode != 0:
        raise RuntimeError(f'training {config} failed (exit code '
                           f'{proc.returncode}); whole output: {log_path}\n'
                           + ''.join(tail))
    return osp.join(work_dir, f'iter_{iters}.pth')


def last_val_metrics(work_dir: str) -> dict:
    """The last logged row with ``mIoU`` of the newest run in ``work_dir``.
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise RuntimeError(f'no scalars.json under {work_dir}')
    metrics = {}
    with open(files[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 'mIoU' in row:
                metrics = row
    return metrics
