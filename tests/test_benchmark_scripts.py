"""The benchmark scripts run and report sane rows (tiny sizes: no timing
is asserted, only what the rows say about the switched paths' outputs)."""
import json
import os

import pytest

from conftest import run_tool


@pytest.mark.slow  # 65 s, most of it torch.compile: run by make test-slow
def test_switches_benchmark_rows(tmp_path):
    res = run_tool('benchmarks/benchmark.py', '--what', 'switches',
                   '--models', 'segformer_b0', '--size', '64', '--batch', '2',
                   '--runs', '1', '--warmup', '0', '--out', str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.load(open(tmp_path / 'benchmark_cpu.json'))
    rows = {r['case']: r for r in report['switches']['rows']}
    assert list(rows) == ['fp32', 'channels_last', 'bf16', 'compile',
                          'compile + bf16']
    assert all(r['images_per_s'] > 0 for r in rows.values())
    assert rows['fp32']['argmax_agreement'] == 1.0
    # layout and compilation leave the fp32 output as it is (rounding may
    # flip a near-tie pixel on another CPU; a wrong path flips half)
    for case in ('channels_last', 'compile'):
        assert rows[case]['argmax_agreement'] > 0.99, case
        assert rows[case]['max_logit_diff'] < 1e-3, case
    # bf16 moves it a little, not a lot
    assert 0 < rows['bf16']['max_logit_diff'] < 0.5
    assert '| segformer_b0 | compile + bf16 | 2 |' in res.stdout


def test_gpu_speed_script_runs_on_the_cpu(tmp_path):
    """The GPU check's script, its CPU path (no HF, no compile): every
    SegFormer stack and the project path through the config produce rows."""
    res = run_tool('benchmarks/gpu_speed.py', '--arch', 'b0',
                   '--batch', '1', '--size', '64', '--steps', '1',
                   '--warmup', '0', '--device', 'cpu', '--no-hf',
                   '--no-compile', '--out', str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.load(open(tmp_path / 'gpu_speed_b0.json'))
    stacks = [(r['stack'], r['dtype']) for r in report['rows']]
    assert stacks == [
        ('mmseg stock MiT', 'fp32'), ('mmseg stock MiT', 'bf16'),
        ('cardamage SDPA MiT', 'fp32'), ('cardamage SDPA MiT', 'bf16'),
        ('cardamage SDPA MiT + channels_last', 'bf16'),
        ('project path', 'fp32')]
    assert all(r['train'] > 0 and r['infer'] > 0 for r in report['rows'])
    assert report['device'] == 'CPU'
    assert 'AmpOptimWrapper needs a GPU, skipped' in res.stdout


@pytest.mark.slow  # about a minute: a model, 3 pipeline runs
def test_infer_pipeline_benchmark_rows(tmp_path):
    res = run_tool('benchmarks/infer_pipeline.py', '--photos', '2',
                   '--size', '640x480', '--batch-size', '1',
                   '--out-dir', str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.load(open(tmp_path / 'infer_pipeline_cpu.json'))
    assert report['e2e']['model_only'] > 0
    assert all(r['photos_per_s'] > 0 for r in report['e2e']['runs'])
    # the damage bias is calibrated: 10% of the first photo, not 60-70%
    assert all(0 < r['damage_share'] < 0.4 for r in report['e2e']['runs'])
    # each run against the model alone measured next to it
    runs, alone = report['e2e']['runs'], report['e2e']['model_only_all']
    assert len(alone) == len(runs) + 1
    for k, r in enumerate(runs):
        assert r['model_only'] == pytest.approx(max(alone[k:k + 2]), abs=0.01)
        assert r['ratio'] == pytest.approx(
            r['photos_per_s'] / r['model_only'], rel=0.02, abs=0.01)
        # against the mean of the two neighbours: never above the faster
        assert r['ratio_mean'] == pytest.approx(
            r['photos_per_s'] * 2 / sum(alone[k:k + 2]), rel=0.02, abs=0.01)
        assert r['ratio_mean'] >= r['ratio'] - 0.01
    assert [s['ratios'] for s in report['e2e']['summary']] == [
        [r['ratio']] for r in runs]
    for key in ('components_ms', 'model_components_ms'):
        parts = report[key]
        assert parts['new total'] == pytest.approx(
            parts['prepare'] + parts['finish'] + parts['write'], abs=0.2)
    null = report['null_pipeline']
    assert len(null) >= 3 and not any(r['failed'] for r in null)
    assert null[-1]['lockstep'] == report['cores']


@pytest.mark.slow  # about a minute: 3 fresh interpreters build the model
def test_infer_pipeline_scaling_rows(tmp_path):
    """The machine's ceiling: 1 and 2 independent processes over disjoint
    shards (every photo done once: the script checks it), next to one
    process and lockstep; each speed-up is the ratio of its two times."""
    res = run_tool('benchmarks/infer_pipeline.py', '--photos', '3',
                   '--size', '640x480', '--what', 'scaling',
                   '--out-dir', str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    scaling = json.load(open(tmp_path / 'infer_pipeline_cpu.json'))['scaling']
    cores = len(os.sched_getaffinity(0))
    ms = scaling['ms_per_photo']
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64) if n < cores] + [cores]
    assert list(ms) == ['one process', f'lockstep {cores}'] + [
        f'{n} independent' for n in counts]
    assert all(len(v) == 1 and v[0] > 0 for v in ms.values())
    for n in counts[1:]:
        [speedup] = scaling['speedups'][f'{n} independent vs 1']
        assert speedup == pytest.approx(
            ms['1 independent'][0] / ms[f'{n} independent'][0], rel=0.01)


def test_mask_agreement_rows(members, tmp_path):
    """The agreement benchmark compares the two paths photo by photo and
    splits off the upsampling: the windowed sign upsampling of the old
    path's own logits is the old mask wherever it has damage."""
    cfg, ckpt = members['b0']
    res = run_tool('benchmarks/mask_agreement.py', ckpt, '--config', cfg,
                   '--limit', '2', '--sizes', 'native', '640x480',
                   '--out-dir', str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.load(open(tmp_path / 'mask_agreement_cpu.json'))
    assert list(report['sizes']) == ['native', '640x480']
    for size, part in report['sizes'].items():
        rows = part['rows']
        assert [r['photo'] for r in rows] == ['10.jpg', '13.jpg'], size
        assert part['summary']['photos'] == 2
        for r in rows:
            assert 0 <= r['iou'] <= 1 and 0 <= r['equal_pixels'] <= 1
            # the labels painted at the photo's size: intersection <= union
            for key in ('truth_old', 'truth_new'):
                assert 0 <= r[key][0] <= r[key][1] <= r['size'][0] * r[
                    'size'][1], (size, key)
            if r['damage_share'] >= 1e-3:
                assert r['iou_upsampling'] >= 0.99, (size, r)
    assert report['sizes']['640x480']['rows'][0]['size'] == [480, 640]
    res = run_tool('benchmarks/mask_agreement.py', str(tmp_path / 'no.pth'),
                   '--out-dir', str(tmp_path))
    assert res.returncode == 2 and 'checkpoint not found' in res.stderr
