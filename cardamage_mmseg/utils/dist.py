"""Distributed runs on machines without a GPU (CPU + gloo).

Why this is ours: mmengine 0.10.7's ``init_dist('pytorch')`` always calls
``torch.cuda.set_device`` and its DDP wrapper always passes ``device_ids``,
so ``torchrun`` on CPU-only machines fails before the first iteration, and
torch's SyncBatchNorm only runs on GPUs. The tools call
:func:`prepare_cpu_distributed` first: it starts a gloo process group itself
(the runner then skips its own init), turns SyncBN into BN (statistics per
process) and wraps without ``device_ids``. On GPU machines it does nothing.
"""
import gc
import os
import subprocess
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from .config import ConfigError


def prepare_cpu_distributed(cfg: Config, testing: bool = False) -> None:
    """See the module docstring. ``testing``: wrap with
    :class:`FrozenModelWrapper` instead of DDP (nothing to synchronise; DDP
    on gloo sometimes aborted a rank during set-up here)."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if 'RANK' not in os.environ:
        raise ConfigError('--launcher pytorch needs torchrun '
                          '(tools/dist_train.sh / tools/dist_test.sh)')
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':
        print_log(f'no GPU: using the gloo backend instead of {backend}',
                  logger='current')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if _sync_bn_to_bn(cfg.model):
        print_log('no GPU: SyncBN layers run as BN (per-process statistics)',
                  logger='current')
    if testing and cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='FrozenModelWrapper')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def _sync_bn_to_bn(node) -> bool:
    """Replace ``type='SyncBN'`` by ``'BN'`` everywhere in a config tree."""
    changed = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed = True
        for value in node.values():
            changed |= _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed |= _sync_bn_to_bn(value)
    return changed


def finish_distributed() -> None:
    """Close the process group at the end of a tool (all ranks together).

    Call it after dropping the runner: the DDP wrapper's reducer holds the
    group, and the runner's reference cycles would otherwise keep both
    until interpreter shutdown, where tearing down gloo's threads can abort
    a rank ("terminate called without an active exception": 2 of about 55
    two-process CPU runs here, one of them in CI). So: collect garbage
    first (the wrapper goes while Python is fully alive), then barrier and
    destroy.
    """
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    gc.collect()


def start_shard(launcher: str = 'none') -> Tuple[int, int, int]:
    """(rank, world size, local rank) of a sharded inference process,
    with a gloo process group started for :func:`gather_to_first`.

    ``'pytorch'``: torchrun's environment; ``'slurm'``: srun's
    (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``; the first host
    of the job is the master, port ``MASTER_PORT`` or 29500). ``'none'``:
    one process. gloo also on GPU machines: only report rows travel.
    """
    if launcher == 'none':
        return 0, 1, 0
    if launcher == 'slurm':
        env = os.environ
        if 'SLURM_PROCID' not in env:
            raise ConfigError('--launcher slurm needs srun '
                              '(tools/slurm_infer.sh)')
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            nodes = subprocess.run(
                ['scontrol', 'show', 'hostnames', env['SLURM_NODELIST']],
                capture_output=True, text=True, check=True).stdout
            env['MASTER_ADDR'] = nodes.split()[0]
    elif 'RANK' not in os.environ:
        raise ConfigError('--launcher pytorch needs torchrun '
                          '(tools/dist_infer.sh)')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    return (dist.get_rank(), dist.get_world_size(),
            int(os.environ.get('LOCAL_RANK', 0)))


def gather_to_first(obj: Any) -> Optional[List[Any]]:
    """Every rank's ``obj`` at rank 0 (a list in rank order; None
    elsewhere), then the group is closed (:func:`finish_distributed`)."""
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    finish_distributed()
    return out
