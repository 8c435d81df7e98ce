"""SegFormer training/inference throughput, the study's stack (HF
transformers) and this project's path side by side, in one process.

    python benchmarks/gpu_speed.py [--arch b3] [--batch 32] [--size 512] \
        [--steps 20] [--warmup 5] [--device cuda] [--no-hf] [--out DIR] \
        [--configs configs/upernet_swin-t_cardamage.py ...]

Cases (random weights and data, 2 classes): HF
``SegformerForSemanticSegmentation`` fp32 / bf16 autocast / bf16 +
torch.compile (skipped when ``transformers`` is not installed), mmseg's
stock ``MixVisionTransformer`` fp32 / bf16, and the project's
``MixVisionTransformerSDPA`` fp32 / bf16 / bf16 + channels_last / bf16 +
torch.compile. Training = forward + upsampled cross-entropy + backward +
AdamW (fused on CUDA); inference = no-grad forward. Prints images/s and the
ratio to the best HF figure, with the device's name.

"project path" rows go through what ``tools/train.py``/``tools/test.py`` run:
the config's model with its data preprocessor (uint8 batches normalised on
the device), mmengine's optim wrapper from the config (fused AdamW;
``AmpOptimWrapper`` bf16 with ``--amp``), ``model.train_step`` /
``model.test_step``, and the switches of ``apply_speed_settings``
(channels_last, compiled network). ``--configs`` measures other baselines
the same way, stock fp32 vs the switches. On a machine without
internet, carry the wheels (torch, transformers, mmcv built there) as the
device notes describe; the script itself downloads nothing.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SEGFORMER = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
MIT = {'b0': dict(embed_dims=32, num_layers=[2, 2, 2, 2],
                  in_channels=[32, 64, 160, 256]),
       'b3': dict(embed_dims=64, num_layers=[3, 4, 18, 3],
                  in_channels=[64, 128, 320, 512])}


def set_mit(cfg, arch: str) -> None:
    """Turn the SegFormer-b0 config's model into MiT-``arch``."""
    spec = MIT[arch]
    cfg.model.backbone.update(embed_dims=spec['embed_dims'],
                              num_layers=spec['num_layers'])
    cfg.model.decode_head.in_channels = spec['in_channels']


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def time_steps(model, device, args, train_step, infer_step) -> dict:
    """images/s of ``train_step`` (model in train mode) and ``infer_step``
    (eval mode): ``args.steps`` timed calls after ``args.warmup``."""
    rates = {}
    for name, step in (('train', train_step), ('infer', infer_step)):
        model.train(name == 'train')
        for _ in range(args.warmup):
            step()
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(device)
        rates[name] = args.batch * args.steps / (time.perf_counter() - start)
    return rates


def build_mmseg(arch, backbone_type):
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmseg.registry import MODELS
    cfg = Config.fromfile(SEGFORMER)
    set_mit(cfg, arch)
    cfg.model.backbone.update(type=backbone_type, init_cfg=None)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    return lambda x: model._forward(x), model


def build_hf(arch):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    spec = MIT[arch]
    config = SegformerConfig(
        num_labels=2, hidden_sizes=spec['in_channels'],
        depths=spec['num_layers'], decoder_hidden_size=768
        if arch != 'b0' else 256)
    model = SegformerForSemanticSegmentation(config)
    return lambda x: model(pixel_values=x).logits, model


def measure(forward, model, args, dtype, channels_last=False,
            compile_=False):
    device = torch.device(args.device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(forward) if compile_ else forward
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (args.batch, args.size, args.size),
                      device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5,
                            fused=device.type == 'cuda')
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=dtype == 'bf16')

    def train_step():
        with autocast:
            logits = fwd(x)
            logits = F.interpolate(logits, size=y.shape[-2:],
                                   mode='bilinear', align_corners=False)
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad(), autocast:
            fwd(x)

    rates = time_steps(model, device, args, train_step, infer_step)
    model.to('cpu')  # main keeps a reference until the next case
    return rates


def project_path(config, args, amp=False, channels_last=False,
                 compile_=False, arch=None):
    """images/s of ``model.train_step``/``test_step`` built from a config,
    as the tools build it (see the module docstring)."""
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner.amp import autocast
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from cardamage_mmseg.engine import compile_network, to_channels_last
    from cardamage_mmseg.cli.speed import apply_speed_settings
    from cardamage_mmseg.engine.amp import AMP_DTYPES
    from cardamage_mmseg.utils.config import load_config
    from cardamage_mmseg.zoo import BASELINES, offline_options
    # as the zoo builds it offline (no pretrained download)
    rel = osp.relpath(osp.abspath(config), REPO)
    names = [n for n, b in BASELINES.items() if b.config == rel]
    cfg = load_config(config, offline_options(names[0]) if names else None)
    if arch:
        set_mit(cfg, arch)
    cfg.model.data_preprocessor['size'] = (args.size, args.size)
    # --amp as tools/train.py applies it (AmpOptimWrapper, AmpTestLoop dtype)
    apply_speed_settings(cfg, amp='auto' if amp else None)
    cast = AMP_DTYPES[cfg.test_cfg.dtype] if amp else None
    device = torch.device(args.device)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if channels_last:
        to_channels_last(model)
    if compile_:
        compile_network(model)
    h = w = args.size
    num_classes = cfg.model.decode_head.get('num_classes', 2)

    def batch():
        samples = []
        for _ in range(args.batch):
            s = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(
                0, num_classes, (1, h, w))))
            s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                                pad_shape=(h, w)))
            samples.append(s)
        return dict(inputs=[torch.randint(0, 256, (3, h, w),
                                          dtype=torch.uint8)
                            for _ in range(args.batch)],
                    data_samples=samples)

    data = batch()

    def infer_step():
        with torch.no_grad(), autocast(enabled=cast is not None, dtype=cast):
            model.test_step(data)

    return time_steps(model, device, args,
                      lambda: model.train_step(data, optim_wrapper),
                      infer_step)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', choices=sorted(MIT), default='b3')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--device', default='cuda')
    p.add_argument('--no-hf', action='store_true')
    p.add_argument('--no-compile', action='store_true')
    p.add_argument('--out', default='work_dirs/benchmark')
    p.add_argument('--no-segformer', action='store_true',
                   help='only the --configs rows')
    p.add_argument('--configs', nargs='*', default=[],
                   help='other baselines: stock fp32 vs the speed switches '
                   'through the project path')
    args = p.parse_args(argv)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    # the optim wrapper's per-parameter lines would bury the table
    MMLogger.get_instance('gpu_speed', log_level='WARNING')
    import cardamage_mmseg.register  # noqa: F401
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        device_name = torch.cuda.get_device_name(args.device)
    else:
        device_name = 'CPU'
    cases = []
    if not args.no_hf and not args.no_segformer:
        hf = importlib.util.find_spec('transformers') is not None
        if not hf:
            print('transformers not installed: HF reference skipped')
        else:
            cases += [('HF transformers', 'fp32', {}),
                      ('HF transformers', 'bf16', {})]
            if not args.no_compile:
                cases.append(('HF transformers', 'bf16',
                               dict(compile_=True)))
    if not args.no_segformer:
        cases += [('mmseg stock MiT', 'fp32', {}),
                  ('mmseg stock MiT', 'bf16', {}),
                  ('cardamage SDPA MiT', 'fp32', {}),
                  ('cardamage SDPA MiT', 'bf16', {}),
                  ('cardamage SDPA MiT', 'bf16', dict(channels_last=True))]
        if not args.no_compile:
            cases.append(('cardamage SDPA MiT', 'bf16', dict(compile_=True)))
        cases += [('project path', 'fp32', {}),
                  ('project path', 'bf16', dict(amp=True))]
        if not args.no_compile:
            cases.append(('project path', 'bf16',
                          dict(amp=True, compile_=True)))
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        cases += [(f'{name}', 'fp32', dict(config=config)),
                  (f'{name}', 'bf16', dict(config=config, amp=True,
                                           channels_last=True))]
        if not args.no_compile:
            cases.append((f'{name}', 'bf16', dict(
                config=config, amp=True, channels_last=True,
                compile_=True)))
    rows = []
    for stack, dtype, opts in cases:
        opts = dict(opts)
        if stack == 'project path' or 'config' in opts:
            config = opts.pop('config', SEGFORMER)
            if opts.get('amp') and not args.device.startswith('cuda'):
                print(f'{stack}: AmpOptimWrapper needs a GPU, skipped')
                continue
            rates = project_path(
                config, args, arch=args.arch if config == SEGFORMER else None,
                **opts)
        else:
            if stack.startswith('HF'):
                forward, model = build_hf(args.arch)
            else:
                forward, model = build_mmseg(
                    args.arch, 'MixVisionTransformer' if 'stock' in stack
                    else 'MixVisionTransformerSDPA')
            rates = measure(forward, model, args, dtype, **opts)
        if args.device.startswith('cuda'):
            torch.cuda.empty_cache()
        # the dtype column says bf16; the label names the other switches
        label = stack + ''.join(f' + {k.rstrip("_")}' for k in opts
                                if k != 'amp')
        rows.append(dict(stack=label, dtype=dtype, batch=args.batch,
                         **rates))
        print(f'{label:40s} {dtype}  train {rates["train"]:8.1f} img/s  '
              f'infer {rates["infer"]:8.1f} img/s', flush=True)
    hf_rows = [r for r in rows if r['stack'].startswith('HF')]
    best_train = max((r['train'] for r in hf_rows), default=None)
    best_infer = max((r['infer'] for r in hf_rows), default=None)
    what = 'configs' if args.no_segformer else f'SegFormer-{args.arch}'
    print(f'\n{what}, {args.size}x{args.size}, {device_name}, '
          f'torch {torch.__version__}')
    # "x fp32": against the same stack's first (fp32) row
    first = {}
    for r in rows:
        first.setdefault(r['stack'].split(' + ')[0], r)
    print('| stack | batch | dtype | train img/s | infer img/s | train x HF '
          'best | infer x HF best | train x fp32 | infer x fp32 |\n'
          '|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        tr = f"{r['train'] / best_train:.2f}" if best_train else '-'
        inf = f"{r['infer'] / best_infer:.2f}" if best_infer else '-'
        base = first[r['stack'].split(' + ')[0]]
        print(f"| {r['stack']} | {r['batch']} | {r['dtype']} | "
              f"{r['train']:.1f} | {r['infer']:.1f} | {tr} | {inf} | "
              f"{r['train'] / base['train']:.2f} | "
              f"{r['infer'] / base['infer']:.2f} |")
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, f'gpu_speed_{args.arch}.json')
    with open(path, 'w') as f:
        json.dump(dict(device=device_name, torch=torch.__version__,
                       arch=args.arch, size=args.size, rows=rows), f,
                  indent=1)
    print(f'saved {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
