"""What ONNX Runtime's spinning threads cost the work after a run, and what
stopping them costs the run (``runtime.onnx_segmenter.SPIN_STOP``).

    python benchmarks/ort_spin.py [--batch 2] [--rounds 12]
        [--config configs/segformer_hf_b0_cardamage.py]

Random weights, inputs 512 x 512, one process. A PyTorch forward (the
"next work": the model itself in fp32, and the study's stack, HF
SegFormer in bf16, if transformers is installed) is timed right after
another call of itself, right after a session run whose threads spin on
(onnxruntime's default), and right after a run of a session with the spin
stopped; then the two sessions' own runs, each after a pause of 0.3 s (no
spinning left from the call before). Every case once per round, in turn;
medians.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from functools import partial

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.export_speed import square_photo, study_stack  # noqa: E402
from benchmarks.overheads import random_checkpoints  # noqa: E402
from benchmarks.report import save_report  # noqa: E402


def hf_study(config: str, batch: int):
    """The study's stack of ``config``'s size (as export_speed.py times
    it), or None."""
    arch = next((a for a in ('b0', 'b3') if f'_{a}_' in config), None)
    if arch is None:
        return None
    try:
        from benchmarks.gpu_speed import build_hf
        forward, model = build_hf(arch)
    except ImportError:
        return None
    model.eval()
    return study_stack(forward, batch, 512)


def shaped_session(path: str, shape, spin_stop: str):
    """An onnxruntime session of ``path`` for inputs of ``shape`` (as the
    runtime's shape sessions), its threads' spin-wait stopped after a run
    or not (``spin_stop`` '1' / '0')."""
    import onnxruntime as ort
    import torch
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry('session.force_spinning_stop',
                                     spin_stop)
    for name, size in zip(('batch', 'height', 'width'), shape[:1] + shape[2:]):
        options.add_free_dimension_override_by_name(name, size)
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default='configs/segformer_hf_b0_cardamage.py')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--rounds', type=int, default=12)
    p.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = p.parse_args(argv)
    import torch

    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.apis.export import export_onnx
    from cardamage_mmseg.runtime import OnnxSegmenter
    rgb = square_photo(512)
    with tempfile.TemporaryDirectory() as tmp:
        [ckpt] = random_checkpoints(tmp, [args.config])
        seg = DamageSegmenter(osp.join(REPO, args.config), ckpt)
        path = osp.join(tmp, 'model.onnx')
        print('exporting ...', flush=True)
        export_onnx(seg, args.config, ckpt, path, rgb)
        runtime = OnnxSegmenter(path)
        x = np.stack([runtime._prepare_piece(rgb, 'x')[0][0]] * args.batch)
        sessions = {name: shaped_session(path, x.shape, value)
                    for name, value in (('spinning', '0'),
                                        ('spin stopped', '1'))}
        pieces = [seg.prepare(rgb, 'x').pieces[0]] * args.batch

        nexts = {'torch': lambda: seg._run(pieces)}
        study = hf_study(args.config, args.batch)
        if study:
            nexts['study'] = study

        def after(before, work):
            before()
            t0 = time.perf_counter()
            work()
            return time.perf_counter() - t0

        def run_alone(session):
            time.sleep(0.3)
            t0 = time.perf_counter()
            session.run(None, {'image': x})
            return time.perf_counter() - t0
        cases = {}
        for name, work in nexts.items():
            cases[f'{name} after {name}'] = partial(after, work, work)
            for k, s in sessions.items():
                cases[f'{name} after a run, {k}'] = partial(
                    after, partial(s.run, None, {'image': x}), work)
        for k, s in sessions.items():
            cases[f'run alone, {k}'] = partial(run_alone, s)
        for fn in cases.values():
            fn()
            fn()
        times = {k: [] for k in cases}
        for i in range(args.rounds):
            for k, fn in cases.items():
                times[k].append(fn())
            print(f'round {i + 1}/{args.rounds}', flush=True)
    rate = {k: round(args.batch / statistics.median(v), 2)
            for k, v in times.items()}
    for k, v in rate.items():
        print(f'{k:36s} {v:7.2f} images/s')
    save_report(dict(config=args.config, batch=args.batch,
                     rounds=args.rounds, threads=torch.get_num_threads(),
                     images_per_s=rate), args.out_dir, 'ort_spin', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
