"""Test (and evaluate) a segmentor: mmseg's tools/test.py plus the project's
options.

    python tools/test.py CONFIG CHECKPOINT [--show-dir DIR] [--out DIR] \
        [--tta] [--amp [bf16|fp16]] [--compile] [--channels-last] \
        [--label-set aihub] [--partial-checkpoint] [--cfg-options ...]

``--show-dir DIR`` draws every test image: ground truth and prediction
overlaid in the dataset palette, side by side, as
``DIR/vis_data/vis_image/test_<image>_<step>.png``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config, DictAction  # noqa: E402,F401
from mmengine.runner import Runner  # noqa: E402

import cardamage_mmseg.register  # noqa: E402,F401  (modules, safe loading)
from cardamage_mmseg.cli.config import (  # noqa: E402
    LABEL_SETS, load_tool_config)
from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.cli.speed import (  # noqa: E402
    add_speed_args, apply_speed_settings)
from cardamage_mmseg.utils.checkpoint import (  # noqa: E402
    check_checkpoint_fits)
from cardamage_mmseg.utils.dist import (  # noqa: E402
    finish_distributed, prepare_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file (not for ensemble configs, whose members '
        'name their own)')
    parser.add_argument('--work-dir', help='where metrics are dumped as json')
    parser.add_argument(
        '--out', help='directory to save predicted masks (PNG class ids)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted images are saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--label-set', choices=sorted(LABEL_SETS),
        help='binary (background/damage) or aihub (5 damage types)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (see mmseg docs)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument(
        '--partial-checkpoint', action='store_true',
        help='evaluate a checkpoint that does not fit the model (what does '
        'not fit stays random; mmseg\'s default): for debugging')
    add_speed_args(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    cfg = load_tool_config(args.config, args.cfg_options, args.label_set,
                           args.work_dir, args.launcher)
    if cfg.model.get('type') == 'EnsembleSegmentor':
        # several processes: frozen members need no DDP (which refuses them)
        cfg.setdefault('model_wrapper_cfg', dict(type='FrozenModelWrapper'))
        if args.checkpoint:
            raise UsageError('an ensemble config takes no checkpoint '
                             '(its members list theirs)')
        if args.tta:
            raise UsageError('for an ensemble use '
                             '--cfg-options model.flip=True instead of --tta')
        if args.compile or args.channels_last:
            raise UsageError('--compile/--channels-last apply to one '
                             'model, not to an ensemble config')
    elif not args.checkpoint:
        raise UsageError('a checkpoint file is required')
    elif not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint file {args.checkpoint} not '
                         f'found')
    cfg.load_from = args.checkpoint or None
    if args.show or args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise UsageError('--show/--show-dir need '
                             'default_hooks.visualization in the config')
        hooks.visualization.update(draw=True, interval=1)
        if args.show:
            hooks.visualization.update(show=True, wait_time=args.wait_time)
        if args.show_dir:
            cfg.visualizer['save_dir'] = osp.abspath(args.show_dir)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    apply_speed_settings(cfg, amp=args.amp, compile=args.compile,
                         channels_last=args.channels_last, training=False)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    prepare_cpu_distributed(cfg, testing=True)
    runner = Runner.from_cfg(cfg)
    if cfg.load_from and not args.partial_checkpoint:
        # mmengine loads test checkpoints with strict=False: a checkpoint
        # of another model would be scored with random weights
        check_checkpoint_fits(runner.model, cfg.load_from, args.config)
    runner.test()
    del runner  # before the process group goes (finish_distributed)
    finish_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
