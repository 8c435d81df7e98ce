"""Write a SegFormer trained here (MiT + SegformerHFHead) as a HuggingFace
model directory, ready to publish.

    python tools/model_converters/mmseg2hf.py CONFIG CHECKPOINT OUT_DIR \
        [--metrics test.json] [--license SPDX] [--no-verify]

OUT_DIR (new) gets config.json (id2label), model.safetensors (the Hub
layout), preprocessor_config.json (this config's mean/std, RGB) and a
README.md model card (classes, data, metrics, licence). The licence is the
source's for models converted from HF, NVIDIA's SegFormer licence
(non-commercial) for weights grown from NVIDIA's MiT, else --license.
transformers then loads it: SegformerForSemanticSegmentation.
from_pretrained(OUT_DIR); the tool checks that it computes the same logits.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('out_dir', help='a new directory')
    p.add_argument('--metrics', help='a JSON file of metrics for the model '
                   'card (e.g. what tools/test.py wrote)')
    p.add_argument('--license', help='the weights\' licence (SPDX id), '
                   'replacing the derived one')
    p.add_argument('--no-verify', action='store_true',
                   help='skip loading the result with transformers')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    metrics = None
    if args.metrics:
        try:
            with open(args.metrics, encoding='utf-8') as f:
                metrics = json.load(f)
        except (OSError, ValueError) as error:
            raise UsageError(f'--metrics {args.metrics}: {error}') from None
        if not isinstance(metrics, dict):
            raise UsageError(f'--metrics {args.metrics}: not a JSON object')
    from cardamage_mmseg.apis.hf import mmseg_to_hf
    result = mmseg_to_hf(args.config, args.checkpoint, args.out_dir,
                         metrics=metrics, license=args.license,
                         verify=not args.no_verify)
    print(f'classes: {", ".join(result["classes"])}')
    print(f'parameters: {result["params"] / 1e6:.2f} M')
    print(f'licence: {result["license"].get("license")} '
          f'{result["license"].get("license_name", "")}'.rstrip())
    if 'max_diff' in result:
        print(f'transformers loads it: max |logit difference| '
              f'{result["max_diff"]:.2e}')
    print(f'wrote {result["out_dir"]}')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
