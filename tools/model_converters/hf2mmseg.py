"""Convert a HuggingFace SegFormer (a local save_pretrained directory) into
a checkpoint and config of this project.

    python tools/model_converters/hf2mmseg.py HF_DIR OUT.pth \
        [--config-out OUT.py]

HF_DIR holds config.json and model.safetensors (or pytorch_model.bin, read
through the safe loader); a Hub id is looked up in the local HF cache only.
The model becomes MiT + SegformerHFHead (HF's head, exactly), classes from
id2label, mean/std from preprocessor_config.json; the source's licence
files are copied beside OUT.pth and its licence and model-card fields are
kept in the checkpoint's meta. Then: tools/test.py OUT.py OUT.pth,
tools/infer.py OUT.py OUT.pth photos/, tools/export.py, ensembles,
distillation teachers; tools/train.py OUT.py fine-tunes from it.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from cardamage_mmseg.cli.main import run  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('hf_dir', help='a save_pretrained directory (or a Hub '
                   'id in the local HF cache)')
    p.add_argument('out', help='the checkpoint (.pth) to write')
    p.add_argument('--config-out', help='also write a config for it')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from cardamage_mmseg.apis.hf import hf_to_mmseg
    summary = hf_to_mmseg(args.hf_dir, args.out, args.config_out)
    print(f'classes: {", ".join(summary["classes"])}')
    print(f'parameters: {summary["params"] / 1e6:.2f} M')
    print(f'licence: {summary["license"]}')
    if summary['reduce_labels']:
        print('note: the source\'s processor reduces labels (0 = ignore); '
              'its id2label counts from the first real class')
    for path in summary['written']:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
