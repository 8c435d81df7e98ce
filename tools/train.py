"""Train a segmentor: mmseg's tools/train.py plus the project's options.

    python tools/train.py configs/segformer_b3_cardamage.py \
        [--work-dir DIR] [--resume] [--amp [bf16|fp16]] [--compile] \
        [--channels-last] [--label-set aihub] [--loss ce-dice] \
        [--cfg-options model.backbone.init_cfg=None ...] [--launcher pytorch]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import cardamage_mmseg.register  # noqa: E402,F401  (modules, safe loading)
from cardamage_mmseg.cli.config import (  # noqa: E402
    LABEL_SETS, apply_loss_preset, find_resume_checkpoint, load_tool_config,
    loss_preset_names)
from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.cli.speed import (  # noqa: E402
    add_speed_args, apply_speed_settings)
from cardamage_mmseg.utils.dist import (  # noqa: E402
    finish_distributed, prepare_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from the latest checkpoint in the work dir, or from '
        'the given checkpoint file')
    add_speed_args(parser)
    parser.add_argument(
        '--label-set',
        choices=sorted(LABEL_SETS),
        help='binary (background/damage) or aihub (5 damage types)')
    parser.add_argument(
        '--loss',
        choices=loss_preset_names(),
        help='loss combination for every head (configs/_base_/losses/)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (see mmseg docs)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    cfg = load_tool_config(args.config, args.cfg_options, args.label_set,
                           args.work_dir, args.launcher)
    if cfg.model.get('type') == 'EnsembleSegmentor':
        raise UsageError('an EnsembleSegmentor cannot be trained: train '
                         'each member config, then evaluate the ensemble '
                         'with tools/test.py or tools/ensemble.py')
    if args.loss:
        apply_loss_preset(cfg, args.loss)
    apply_speed_settings(cfg, amp=args.amp, compile=args.compile,
                         channels_last=args.channels_last)
    if args.resume == 'auto':
        # found here, relative to the work dir: mmengine's own look-up
        # trains from scratch when there is nothing, and follows the
        # absolute path in last_checkpoint, gone after a move
        cfg.resume = True
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise UsageError(f'checkpoint {args.resume} not found')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    del runner  # before the process group goes (finish_distributed)
    finish_distributed()


if __name__ == '__main__':
    sys.exit(run(main))
