"""A bounded load test on loopback (slow): 8 concurrent clients, 1,000
requests, every one answered 200, the server's memory flat. Speed figures
come from benchmarks/serve_load.py (docs/serve.md), not from here."""
import io
import os.path as osp

import pytest
from PIL import Image

from conftest import DEMO
from serving import served

pytest.importorskip('fastapi')


@pytest.mark.slow
def test_1000_requests_from_8_clients_without_error_or_growth(
        exported_models):
    from benchmarks.serve_load import batch_sizes, load
    photos = []
    for name in ('1.jpg', '4.jpg', '31.jpg', '47.jpg'):
        buf = io.BytesIO()
        Image.open(osp.join(DEMO, 'val', name)).convert('RGB').resize(
            (160, 120)).save(buf, 'JPEG', quality=90)
        photos.append(buf.getvalue())
    with served(exported_models['b0'], '--threads', '1', '--max-queue',
                '256') as (base, proc):
        result = load(base, proc.pid, photos, clients=8, requests=1000,
                      max_seconds=600)
        sizes = batch_sizes(base)
    print('\nload:', result, 'batch sizes:', sizes)
    assert result['requests'] == 1000
    assert result['errors'] == 0, result['statuses']
    # memory: no growth trend after warm-up (allocator noise only)
    assert result['rss_end_mib'] - result['rss_first_quarter_mib'] < 40, \
        result
    assert any(int(size) > 1 for size in sizes)  # requests were batched
