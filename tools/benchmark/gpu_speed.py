"""SegFormer training/inference throughput, the study's stack (HF
transformers) and this project's path side by side, in one process.

    python tools/benchmark/gpu_speed.py [--arch b3] [--batch 32] [--size 512] \
        [--steps 20] [--warmup 5] [--device cuda] [--no-hf] [--out DIR]

Cases (random weights and data, 2 classes): HF ``SegformerForSemanticSegmentation``
fp32 / bf16 autocast / bf16 + torch.compile (skipped when ``transformers`` is
not installed), mmseg's stock ``MixVisionTransformer`` fp32 / bf16, and the
project's ``MixVisionTransformerSDPA`` fp32 / bf16 / bf16 + channels_last /
bf16 + torch.compile. Training = forward + upsampled cross-entropy + backward
+ AdamW (fused on CUDA); inference = no-grad forward. Prints images/s and the
ratio to the best HF figure, with the device's name. On a machine without
internet, carry the wheels (torch, transformers, mmcv built there) as the
device notes describe; the script itself downloads nothing.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MIT = {'b0': dict(embed_dims=32, num_layers=[2, 2, 2, 2],
                  in_channels=[32, 64, 160, 256]),
       'b3': dict(embed_dims=64, num_layers=[3, 4, 18, 3],
                  in_channels=[64, 128, 320, 512])}


def build_mmseg(arch, backbone_type):
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'segformer_b0_cardamage.py'))
    spec = MIT[arch]
    cfg.model.backbone.update(type=backbone_type, init_cfg=None,
                              embed_dims=spec['embed_dims'],
                              num_layers=spec['num_layers'])
    cfg.model.decode_head.in_channels = spec['in_channels']
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

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

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

    rates = {}
    for name, step in (('train', train_step), ('infer', infer_step)):
        model.train(name == 'train')
        for _ in range(args.warmup):
            step()
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        rates[name] = args.batch * args.steps / (time.perf_counter() - start)
    model.to('cpu')
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return rates


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
    args = p.parse_args(argv)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import cardamage_mmseg  # noqa: F401
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        device_name = torch.cuda.get_device_name(args.device)
    else:
        device_name = 'CPU'
    cases = []
    if not args.no_hf:
        try:
            build_hf(args.arch)
            hf = True
        except ImportError:
            print('transformers not installed: HF reference skipped')
            hf = False
        if hf:
            cases += [('HF transformers', 'fp32', {}),
                      ('HF transformers', 'bf16', {})]
            if not args.no_compile:
                cases.append(('HF transformers', 'bf16',
                               dict(compile_=True)))
    cases += [('mmseg stock MiT', 'fp32', {}), ('mmseg stock MiT', 'bf16', {}),
              ('cardamage SDPA MiT', 'fp32', {}),
              ('cardamage SDPA MiT', 'bf16', {}),
              ('cardamage SDPA MiT', 'bf16', dict(channels_last=True))]
    if not args.no_compile:
        cases.append(('cardamage SDPA MiT', 'bf16', dict(compile_=True)))
    rows = []
    for stack, dtype, opts in cases:
        if stack.startswith('HF'):
            forward, model = build_hf(args.arch)
        else:
            forward, model = build_mmseg(
                args.arch, 'MixVisionTransformer' if 'stock' in stack else
                'MixVisionTransformerSDPA')
        rates = measure(forward, model, args, dtype, **opts)
        label = stack + ''.join(f' + {k.rstrip("_")}' for k in opts)
        rows.append(dict(stack=label, dtype=dtype, batch=args.batch,
                         **rates))
        print(f'{label:40s} {dtype}  train {rates["train"]:8.1f} img/s  '
              f'infer {rates["infer"]:8.1f} img/s', flush=True)
    hf_rows = [r for r in rows if r['stack'].startswith('HF')]
    best_train = max((r['train'] for r in hf_rows), default=None)
    best_infer = max((r['infer'] for r in hf_rows), default=None)
    print(f'\nSegFormer-{args.arch}, {args.size}x{args.size}, {device_name}, '
          f'torch {torch.__version__}')
    print('| stack | batch | dtype | train img/s | infer img/s | train x HF '
          'best | infer x HF best |\n|---|---|---|---|---|---|---|')
    for r in rows:
        tr = f"{r['train'] / best_train:.2f}" if best_train else '-'
        inf = f"{r['infer'] / best_infer:.2f}" if best_infer else '-'
        print(f"| {r['stack']} | {r['batch']} | {r['dtype']} | "
              f"{r['train']:.1f} | {r['infer']:.1f} | {tr} | {inf} |")
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
