"""Overheads of the project's wrappers, measured side by side in one run
(random weights, real 512x512-sized input):

- ensemble: time per image of EnsembleSegmentor vs the sum of its members'
  times (interleaved rounds in one process, medians), and peak memory
  (each case in its own process) vs the sum of the members' peaks;
- distillation: one DistillSegmentor training step vs one student training
  step + one teacher no-grad forward;
- inference: DamageSegmenter folder throughput at batch 1 vs batch N, and
  the share of time spent writing masks/overlays/reports.

    python benchmarks/overheads.py [--what ensemble distill infer] \
        [--runs 5] [--device cpu]
"""
import argparse
import json
import os
import os.path as osp
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.report import save_report  # noqa: E402

MEMBERS = ['configs/segformer_b0_cardamage.py',
           'configs/deeplabv3_mobilevit-s_cardamage.py']
DEMO_IMG = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset',
                    'val')


def random_checkpoints(folder, configs, device='cpu'):
    """Random-weight checkpoints of ``configs`` (pretrained loading off)."""
    from mmengine.runner import save_checkpoint
    from mmseg.registry import MODELS

    from cardamage_mmseg.utils.config import load_config
    paths = []
    for cfg_path in configs:
        cfg = load_config(osp.join(REPO, cfg_path),
                          {'model.backbone.init_cfg': None})
        model = MODELS.build(cfg.model)
        model.init_weights()
        path = osp.join(folder, osp.basename(cfg_path) + '.pth')
        save_checkpoint(dict(state_dict=model.state_dict(), meta=dict(
            dataset_meta=dict(classes=('background', 'damage')))), path)
        paths.append(path)
    return paths


def _timed(fn, runs, warmup=1):
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def ensemble_case(case, ckpts, runs, device):
    """Run in a child process: time one case, report peak RSS growth."""
    import numpy as np
    import torch
    from mmengine.registry import init_default_scope
    from PIL import Image
    init_default_scope('mmseg')
    import cardamage_mmseg.register  # noqa: F401
    from cardamage_mmseg.models import load_frozen_model
    from cardamage_mmseg.models.segmentors import EnsembleSegmentor
    from cardamage_mmseg.models.segmentors.probs import predict_probs
    from mmseg.structures import SegDataSample
    img = np.array(Image.open(osp.join(DEMO_IMG, '1.jpg')).convert(
        'RGB').resize((512, 512)))[:, :, ::-1].copy()
    inputs = [torch.from_numpy(img).permute(2, 0, 1)]
    samples = [SegDataSample(metainfo=dict(ori_shape=(512, 512),
                                           img_shape=(512, 512)))]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def ensemble():
        return EnsembleSegmentor(members=[
            dict(config=osp.join(REPO, c), checkpoint=k, device=device)
            for c, k in zip(MEMBERS, ckpts)], fusion='mean')

    if case == 'time':  # interleaved rounds: member0, member1, ensemble
        model = ensemble()
        fns = [lambda m=m: predict_probs(m, inputs, samples, device)
               for m in model.members]
        fns.append(lambda: model.predict(list(inputs),
                                         [s.clone() for s in samples]))
        times = [[] for _ in fns]
        for r in range(runs + 1):
            for i, fn in enumerate(fns):
                start = time.perf_counter()
                fn()
                if r:
                    times[i].append(time.perf_counter() - start)
        print(json.dumps(dict(case=case, seconds=[
            statistics.median(t) for t in times])))
        return
    if case == 'ensemble':
        model = ensemble()
        fn = lambda: model.predict(list(inputs),  # noqa: E731
                                   [s.clone() for s in samples])
    else:
        i = int(case[-1])
        model, _ = load_frozen_model(osp.join(REPO, MEMBERS[i]), ckpts[i],
                                     device)
        fn = lambda: predict_probs(model, inputs, samples, device)  # noqa
    seconds = _timed(fn, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(case=case, seconds=seconds,
                          peak_mb=(peak - base) / 1024)))


def bench_ensemble(runs, device):
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = random_checkpoints(tmp, MEMBERS)
        rows = {}
        for case in ('time', 'member0', 'member1', 'ensemble'):
            out = subprocess.run(
                [sys.executable, __file__, '--child', case, '--runs',
                 str(runs), '--device', device, '--ckpts', *ckpts],
                capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows[case] = row
    t0, t1, t_ens = rows['time']['seconds']
    members_mb = rows['member0']['peak_mb'] + rows['member1']['peak_mb']
    return dict(
        members=[MEMBERS[0], MEMBERS[1]],
        member_seconds=[t0, t1],
        ensemble_seconds=t_ens,
        time_ratio=t_ens / (t0 + t1),
        member_peak_mb=[rows['member0']['peak_mb'],
                        rows['member1']['peak_mb']],
        ensemble_peak_mb=rows['ensemble']['peak_mb'],
        memory_ratio=rows['ensemble']['peak_mb'] / members_mb)


def bench_distill(runs, device, size=256, batch=2):
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    import cardamage_mmseg.register  # noqa: F401
    from cardamage_mmseg.models.segmentors import DistillSegmentor
    from cardamage_mmseg.utils.config import load_config
    with tempfile.TemporaryDirectory() as tmp:
        [teacher_ckpt] = random_checkpoints(
            tmp, ['configs/segformer_b3_cardamage.py'])
        student_cfg = load_config(
            osp.join(REPO, 'configs', 'segformer_b0_cardamage.py'),
            {'model.backbone.init_cfg': None}).model
        student_cfg.decode_head.norm_cfg = dict(type='BN',
                                                requires_grad=True)
        student_cfg.data_preprocessor.size = (size, size)
        distill = DistillSegmentor(
            student=student_cfg, teacher=dict(
                config=osp.join(REPO, 'configs', 'segformer_b3_cardamage.py'),
                checkpoint=teacher_ckpt, device=device),
            distill_losses=[dict(type='PixelKLDistillLoss')]).to(device)
        student = MODELS.build(student_cfg).to(device)
        student.load_state_dict(distill.student.state_dict(), strict=False)
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(batch):
            s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                            ori_shape=(size, size)))
            s.gt_sem_seg = PixelData(
                data=torch.randint(0, 2, (1, size, size)))
            samples.append(s)
        data = distill.data_preprocessor(dict(
            inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
                    for _ in range(batch)], data_samples=samples), True)
        inputs, samples = data['inputs'], data['data_samples']

        def step(model):
            opt = torch.optim.AdamW(
                [p for p in model.parameters() if p.requires_grad], lr=1e-5)

            def run():
                losses = model.loss(inputs, samples)
                total = sum(v for k, v in losses.items() if 'loss' in k)
                opt.zero_grad()
                total.backward()
                opt.step()
            return run

        distill.train()
        student.train()
        teacher = distill.teacher
        t_distill = _timed(step(distill), runs)
        t_student = _timed(step(student), runs)
        t_teacher = _timed(lambda: distill._teacher_forward(inputs), runs)
        grad_teacher = any(p.requires_grad for p in teacher.parameters())
    return dict(size=size, batch=batch, distill_step_s=t_distill,
                student_step_s=t_student, teacher_forward_s=t_teacher,
                ratio=t_distill / (t_student + t_teacher),
                teacher_requires_grad=grad_teacher)


def bench_infer(runs, device, batch=4, images=8):
    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        [ckpt] = random_checkpoints(tmp, [MEMBERS[0]])
        folder = osp.join(tmp, 'photos')
        os.makedirs(folder)
        src = sorted(os.listdir(DEMO_IMG))
        src = [s for s in src if s.endswith('.jpg')]
        for i in range(images):
            Image.open(osp.join(DEMO_IMG, src[i % len(src)])).resize(
                (512, 512)).save(osp.join(folder, f'{i}.jpg'))
        rows = {}
        for bs in (1, batch):
            out = osp.join(tmp, f'out{bs}')
            start = time.perf_counter()
            res = subprocess.run(
                [sys.executable, osp.join(REPO, 'tools', 'infer.py'),
                 osp.join(REPO, MEMBERS[0]), ckpt, folder, '--out', out,
                 '--batch-size', str(bs), '--device', device],
                capture_output=True, text=True, check=True)
            line = [ln for ln in res.stdout.splitlines()
                    if 'image(s) segmented' in ln][0]
            # "N image(s) segmented (R img/s; model Ms of Ts), ..."
            rate, model_s, total_s = (float(v) for v in re.search(
                r'\(([\d.]+) img/s; model ([\d.]+)s of ([\d.]+)s\)',
                line).groups())
            rows[bs] = dict(img_per_s=rate, model_s=model_s,
                            total_s=total_s,
                            wall_s=time.perf_counter() - start)
    return dict(images=images, batch=batch, batch1=rows[1],
                batchN=rows[batch],
                speedup=rows[batch]['img_per_s'] / rows[1]['img_per_s'],
                io_share_batch1=(rows[1]['total_s'] - rows[1]['model_s']) /
                rows[1]['model_s'])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--what', nargs='+', default=['ensemble', 'distill',
                                                 'infer'])
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--device', default='cpu')
    p.add_argument('--child')
    p.add_argument('--ckpts', nargs='*')
    p.add_argument('--out', default='work_dirs/benchmark')
    args = p.parse_args(argv)
    if args.child:
        ensemble_case(args.child, args.ckpts, args.runs, args.device)
        return 0
    import torch
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import cardamage_mmseg.register  # noqa: F401
    report = dict(device=args.device, torch=torch.__version__,
                  threads=torch.get_num_threads())
    if 'ensemble' in args.what:
        report['ensemble'] = r = bench_ensemble(args.runs, args.device)
        print(f"ensemble: {r['ensemble_seconds']:.3f}s/img vs members "
              f"{' + '.join(f'{s:.3f}' for s in r['member_seconds'])} -> "
              f"ratio {r['time_ratio']:.3f}; peak memory "
              f"{r['ensemble_peak_mb']:.0f} MB vs "
              f"{' + '.join(f'{m:.0f}' for m in r['member_peak_mb'])} MB "
              f"-> ratio {r['memory_ratio']:.2f}", flush=True)
    if 'distill' in args.what:
        report['distill'] = r = bench_distill(args.runs, args.device)
        print(f"distill step {r['distill_step_s']:.3f}s vs student step "
              f"{r['student_step_s']:.3f}s + teacher forward "
              f"{r['teacher_forward_s']:.3f}s -> ratio {r['ratio']:.3f} "
              f"(teacher requires grad: {r['teacher_requires_grad']})",
              flush=True)
    if 'infer' in args.what:
        report['infer'] = r = bench_infer(args.runs, args.device)
        print(f"infer: batch 1 {r['batch1']['img_per_s']:.2f} img/s, batch "
              f"{r['batch']} {r['batchN']['img_per_s']:.2f} img/s -> "
              f"x{r['speedup']:.2f}; writing outputs adds "
              f"{r['io_share_batch1']:.1%} to model time", flush=True)
    save_report(report, args.out, 'overheads', args.device)
    return 0


if __name__ == '__main__':
    sys.exit(main())
