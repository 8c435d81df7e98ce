"""The benchmark scripts run and report sane rows (tiny sizes: no timing
is asserted, only what the rows say about the switched paths' outputs)."""
import json

from conftest import run_tool


def test_switches_benchmark_rows(tmp_path):
    res = run_tool('tools/benchmark/benchmark.py', '--what', 'switches',
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
