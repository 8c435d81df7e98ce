"""Export a trained model to ONNX for the torch-free runtime, and verify it.

    python tools/export.py CONFIG [CHECKPOINT] --out model.onnx [--static] \
        [--quantize int8 --calib-dir DIR [--calib-count 32]] \
        [--quantize int8-dynamic] [--verify-dir DIR] [--min-agreement P] \
        [--standard-ops] [--overwrite] [--cfg-options key=value ...] \
        [--partial-checkpoint]

The graph takes RGB photos resized as the config's test pipeline does
(batch, height and width free unless --static) and returns
log-probabilities at that size; the file's metadata says everything the
runtime needs (classes, palette, mean/std, channel order, resize scale,
padding, source config and checkpoint hashes). An ensemble config exports
as one graph of its members (each with its own normalisation) and its
fusion rule, which the runtime applies at the photo's size. Run it with
``tools/infer.py model.onnx photos/`` or ``DamageSegmenter('model.onnx')``,
no torch needed.

After writing, the export is checked against PyTorch on real photos
(--verify-dir, default the bundled sample's val photos): the largest
log-probability difference and the share of equal mask pixels are printed;
below --min-agreement (default 0.9999; 0.99 for int8) the file is not
written and the tool exits with 1.

int8: ``--quantize int8`` is ONNX Runtime's static quantisation, activation
ranges from --calib-dir photos (default the bundled train photos);
``--quantize int8-dynamic`` quantises MatMul weights only, without
calibration.

SegFormer's attention is written as ONNX Runtime's ``MultiHeadAttention``
op (one kernel instead of seven nodes); ``--standard-ops`` keeps ONNX's
own ops, for runtimes other than ONNX Runtime.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SAMPLE = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?',
                   help='the weights (not for an ensemble config, whose '
                   'members name theirs)')
    p.add_argument('--out', required=True, help='the .onnx file to write')
    shape = p.add_mutually_exclusive_group()
    shape.add_argument('--dynamic', action='store_true', default=True,
                       help='batch, height and width free (the default)')
    shape.add_argument('--static', action='store_true',
                       help='batch 1 and one input size (the first '
                       'verification photo\'s, resized and padded)')
    p.add_argument('--quantize', choices=['int8', 'int8-dynamic'])
    p.add_argument('--calib-dir', help='calibration photos for --quantize '
                   'int8 (default: the bundled train photos)')
    p.add_argument('--calib-count', type=int, default=32,
                   help='at most this many calibration photos')
    p.add_argument('--verify-dir', help='photos to check the export on '
                   '(default: the bundled val photos)')
    p.add_argument('--verify-count', type=int, default=0,
                   help='at most this many (0: all)')
    p.add_argument('--min-agreement', type=float,
                   help='smallest share of equal mask pixels accepted '
                   '(default 0.9999, int8 0.99)')
    p.add_argument('--standard-ops', action='store_true',
                   help='ONNX ops only: no ONNX Runtime contrib op (for '
                   'other runtimes; slower in ONNX Runtime)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out file')
    p.add_argument('--partial-checkpoint', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if not args.out.lower().endswith('.onnx'):
        p.error('--out must end with .onnx')
    if args.min_agreement is None:
        args.min_agreement = 0.99 if args.quantize else 0.9999
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.apis.export import (compare, export_onnx,
                                             other_size_photo, photos_in)
    from cardamage_mmseg.apis.export import set_metadata
    from cardamage_mmseg.core.image import read_image_rgb
    from cardamage_mmseg.runtime import OnnxSegmenter
    from cardamage_mmseg.runtime.quantize import quantize_int8
    if osp.exists(args.out) and not args.overwrite:
        raise UsageError(f'{args.out} exists (--overwrite replaces it)')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint {args.checkpoint} not found')
    verify_dir = args.verify_dir or osp.join(SAMPLE, 'val')
    if not osp.isdir(verify_dir):
        raise UsageError(f'--verify-dir {verify_dir} is not a folder')
    photos = photos_in(verify_dir, args.verify_count)
    if not photos:
        raise UsageError(f'no photos in {verify_dir} to verify the export')
    seg = DamageSegmenter(args.config, args.checkpoint, 'cpu',
                          cfg_options=args.cfg_options,
                          strict=not args.partial_checkpoint)
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix='.tmp-export-') as tmp:
        fp32 = osp.join(tmp, 'fp32.onnx')
        t0 = time.perf_counter()
        print(f'exporting {args.config} ...', flush=True)
        meta = export_onnx(seg, args.config, args.checkpoint, fp32,
                           read_image_rgb(photos[0]),
                           dynamic=not args.static,
                           standard_ops=args.standard_ops)
        print(f'  exported in {time.perf_counter() - t0:.1f}s '
              f'({osp.getsize(fp32) / 1e6:.1f} MB)', flush=True)
        final = fp32
        if args.quantize:
            mode = 'dynamic' if args.quantize == 'int8-dynamic' else 'static'
            calib = []
            if mode == 'static':
                calib_dir = args.calib_dir or osp.join(SAMPLE, 'train')
                if not osp.isdir(calib_dir):
                    raise UsageError(f'--calib-dir {calib_dir} is not a '
                                     f'folder')
                calib = photos_in(calib_dir, args.calib_count)
                if not calib:
                    raise UsageError(f'no calibration photos in '
                                     f'{calib_dir}')
            final = osp.join(tmp, 'int8.onnx')
            print(f'quantising to int8 ({mode}'
                  + (f', {len(calib)} calibration photos' if calib else '')
                  + ') ...', flush=True)
            quantize_int8(fp32, final, mode, calib,
                          progress=lambda m: print('  ' + m, flush=True))
            meta['quantization'] = dict(
                mode=mode, weights='int8', calibration_photos=len(calib))
            set_metadata(final, meta)
        # and a crop of another shape: the graph must hold beyond the
        # size it was traced at
        photos.append(other_size_photo(photos[0], tmp))
        print(f'verifying on {len(photos) - 1} photo(s) of {verify_dir} '
              f'and a crop of another size ...', flush=True)
        agreement = compare(seg, OnnxSegmenter(final), photos,
                            progress=lambda m: print('  ' + m, flush=True))
        print(f'max |log p difference| {agreement.max_abs_diff:.3g}; '
              f'equal labels: model size {agreement.model_size_agreement:.6f}'
              f', photo size {agreement.mask_agreement:.6f} (worst photo '
              f'{agreement.worst_mask_agreement:.6f})')
        if agreement.mask_agreement < args.min_agreement:
            print(f'error: mask agreement {agreement.mask_agreement:.6f} '
                  f'is below --min-agreement {args.min_agreement}: '
                  f'{args.out} not written', file=sys.stderr)
            return 1
        os.replace(final, args.out)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 1e6:.1f} MB); run it '
          f'with: python tools/infer.py {args.out} PHOTOS')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
