"""Compare distillation terms on the same data, seed and budget: student
alone vs + pixel KL vs + channel-wise (CWD) vs + feature mimicking.

    python benchmarks/studies/distill_study.py \
        [--student-config configs/segformer_b0_cardamage_demo.py] \
        [--teacher-config configs/segformer_b3_cardamage.py] \
        [--teacher-checkpoint CKPT | --teacher-iters 600] [--iters 300] \
        [--variants none kl cwd feature] [--work-dir work_dirs/distill_study]

Without ``--teacher-checkpoint`` the teacher is first trained on the
student config's data (same pipeline, ``--teacher-iters`` iterations, from
scratch). Each run is a fresh tools/train.py process (progress lines shown,
whole output in WORK_DIR/VARIANT/train_output.log). Prints val mIoU and
damage IoU per variant (also results.json).
"""
import argparse
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from benchmarks.studies.runs import (last_val_metrics,  # noqa: E402
                                     train_short)

VARIANTS = {
    'none': None,
    'kl': [dict(type='PixelKLDistillLoss', tau=2.0, loss_weight=1.0)],
    'cwd': [dict(type='ChannelWiseDistillLoss', tau=4.0, loss_weight=3.0)],
    # MiT-b0 stage 4 (256 ch) -> MiT-b3 stage 4 (512 ch), 1x1 adapter
    'feature': [dict(type='FeatureMimicLoss', student_channels=256,
                     teacher_channels=512, student_index=3,
                     loss_weight=1.0)],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--student-config',
                   default='configs/segformer_b0_cardamage_demo.py')
    p.add_argument('--teacher-config',
                   default='configs/segformer_b3_cardamage.py')
    p.add_argument('--teacher-checkpoint')
    p.add_argument('--teacher-iters', type=int, default=600)
    p.add_argument('--iters', type=int, default=300)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS),
                   choices=list(VARIANTS))
    p.add_argument('--work-dir', default='work_dirs/distill_study')
    args = p.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    student_cfg = osp.abspath(args.student_config)
    teacher_ckpt = args.teacher_checkpoint
    teacher_cfg = osp.abspath(args.teacher_config)
    if not teacher_ckpt:
        # the teacher on the student's data: the student config with a
        # MiT-b3 backbone
        teacher_cfg = osp.abspath(osp.join(args.work_dir,
                                           'teacher_config.py'))
        with open(teacher_cfg, 'w') as f:
            f.write(f"_base_ = [{student_cfg!r}]\n"
                    "model = dict(backbone=dict(embed_dims=64, "
                    "num_layers=[3, 4, 18, 3]), decode_head=dict("
                    "in_channels=[64, 128, 320, 512]))\n")
        print(f'training the teacher ({args.teacher_iters} iterations)',
              flush=True)
        teacher_ckpt = train_short(
            teacher_cfg, osp.join(args.work_dir, 'teacher'),
            args.teacher_iters)
        m = last_val_metrics(osp.join(args.work_dir, 'teacher'))
        print(f'    teacher: mIoU {m["mIoU"]:.2f}, damage IoU '
              f'{m.get("IoU.damage")}', flush=True)
    results = []
    for i, name in enumerate(args.variants, 1):
        work = osp.join(args.work_dir, name)
        print(f'[{i}/{len(args.variants)}] {name}', flush=True)
        if VARIANTS[name] is None:
            config = student_cfg
        else:
            config = osp.join(args.work_dir, f'distill_{name}.py')
            with open(config, 'w') as f:
                f.write(
                    f"_base_ = [{student_cfg!r}]\n"
                    "model = dict(_delete_=True, type='DistillSegmentor', "
                    "student={{_base_.model}}, teacher=dict("
                    f"config={teacher_cfg!r}, checkpoint={teacher_ckpt!r}), "
                    f"distill_losses={VARIANTS[name]!r})\n")
        train_short(config, work, args.iters)
        m = last_val_metrics(work)
        results.append(dict(variant=name, mIoU=m['mIoU'],
                            damage_IoU=m.get('IoU.damage')))
        print(f'    mIoU {m["mIoU"]:.2f}, damage IoU {m.get("IoU.damage")}',
              flush=True)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(student=args.student_config, iters=args.iters,
                       teacher=teacher_ckpt, results=results), f, indent=1)
    print('\n| student | val mIoU | damage IoU |\n|---|---|---|')
    for r in results:
        print(f"| {r['variant']} | {r['mIoU']:.2f} | {r['damage_IoU']:.2f} |")
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except RuntimeError as err:  # a failed run: its log's end and path
        sys.exit(str(err))
