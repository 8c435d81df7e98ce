"""tools/serve.py as its users meet it: a real server process on a free
loopback port, HTTP from the outside. Reports equal tools/infer.py's,
concurrent requests never mix, every bad input is a 4xx JSON error and the
service keeps serving, a full queue is 503 with Retry-After, photos never
reach the disk or the log."""
import base64
import io
import json
import os
import os.path as osp
import threading

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.cli.main import run
from conftest import DEMO, load_tool
from serving import request, segment, served

pytest.importorskip('fastapi')
pytest.importorskip('uvicorn')


def _jpeg(name: str, size) -> bytes:
    img = Image.open(osp.join(DEMO, 'val', name)).convert('RGB').resize(size)
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=92)
    return buf.getvalue()


@pytest.fixture(scope='module')
def photos():
    return {name: _jpeg(name, size) for name, size in (
        ('1.jpg', (320, 240)), ('4.jpg', (200, 300)), ('31.jpg', (256, 256)),
        ('47.jpg', (400, 200)))}


@pytest.fixture(scope='module')
def service(exported_models, tmp_path_factory):
    """The b0 export served with small limits; TMPDIR is a folder of its
    own, to see that no upload is written."""
    tmp = tmp_path_factory.mktemp('service_tmp')
    with served(exported_models['b0'], '--max-upload-mb', '2',
                '--max-pixels', '400000', '--max-batch', '4',
                '--threads', '1', env=dict(TMPDIR=str(tmp))) as (base, proc):
        yield base, proc, tmp


def test_segment_gives_the_report_and_mask_of_infer(
        service, exported_models, photos, tmp_path, capsys):
    base, _, _ = service
    folder = tmp_path / 'photos'
    folder.mkdir()
    (folder / '1.jpg').write_bytes(photos['1.jpg'])
    out = str(tmp_path / 'out')
    infer = load_tool('tools/infer.py')
    assert run(infer.main, [exported_models['b0'], str(folder), '--out',
                            out]) == 0
    with open(osp.join(out, 'report.json')) as f:
        [row] = json.load(f)
    status, headers, body = segment(base, [('file', '1.jpg',
                                            photos['1.jpg'])], '?overlay=true')
    assert status == 200, body
    [entry] = body['results']
    for key in ('width', 'height', 'damage_share', 'share.damage',
                'num_regions', 'regions', 'mean_confidence',
                'damage_confidence'):
        assert entry[key] == row[key], key
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(
        entry['mask_png']))))
    assert np.array_equal(mask, np.asarray(Image.open(
        osp.join(out, 'masks', '1.png'))))
    overlay = Image.open(io.BytesIO(base64.b64decode(entry['overlay_jpeg'])))
    assert overlay.format == 'JPEG' and overlay.width == 320
    assert 'x-request-id' in headers


def test_concurrent_requests_never_mix_results(service, photos):
    """8 clients at once, each its own photo (other sizes): each gets its
    own figures, the same as alone; several photos in one request keep
    their order."""
    base, _, _ = service
    alone = {}
    for name, data in photos.items():
        status, _, body = segment(base, [('file', name, data)])
        assert status == 200
        alone[name] = body['results'][0]
    got, errors = {}, []

    def client(k: int) -> None:
        name = list(photos)[k % len(photos)]
        for _ in range(3):
            status, _, body = segment(base, [('file', name, photos[name])])
            if status != 200:
                errors.append(status)
                continue
            got.setdefault(name, []).append(body['results'][0])
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for name, entries in got.items():
        for e in entries:
            assert (e['width'], e['height'], e['damage_share'],
                    e['regions']) == (alone[name]['width'],
                                      alone[name]['height'],
                                      alone[name]['damage_share'],
                                      alone[name]['regions'])
    names = list(photos)
    status, _, body = segment(base, [('file', n, photos[n]) for n in names])
    assert status == 200
    assert [(r['width'], r['height']) for r in body['results']] == [
        (alone[n]['width'], alone[n]['height']) for n in names]


def test_bad_input_is_a_4xx_json_error_and_the_service_goes_on(
        service, photos):
    base, _, _ = service
    jpeg = photos['1.jpg']
    huge = io.BytesIO()
    Image.new('RGB', (800, 600)).save(huge, 'PNG')  # 480 000 > 400 000 px
    cases = [
        ([('file', 'notes.txt', b'not a photo at all')], 400,
         'cannot read image'),
        ([('file', 'cut.jpg', jpeg[:len(jpeg) // 2])], 400,
         'cannot read image'),
        ([('file', 'big.png', huge.getvalue())], 413, 'pixel limit'),
        ([('photo', 'a.jpg', jpeg)], 422, 'name them "file"'),
        ([('file', 'empty.jpg', b'')], 400, 'is empty'),
    ]
    for files, code, why in cases:
        status, _, body = segment(base, files)
        assert status == code, (files[0][1], status, body)
        assert why in body['error'], body
    # too large: refused from Content-Length before the body is read, and
    # while reading a chunked body (no length) once past the limit
    assert _post_too_large(base, chunked=False) == 413
    assert _post_too_large(base, chunked=True) == 413
    # no body, not multipart
    status, _, raw = request(base + '/v1/segment', b'',
                             {'Content-Type': 'application/json'})
    assert status == 415 and 'multipart' in json.loads(raw)['error']
    # one bad photo among good ones: an error entry, the others segmented
    status, _, body = segment(base, [('file', 'ok.jpg', jpeg),
                                     ('file', 'bad.jpg', b'garbage')])
    assert status == 200
    assert [r['status'] for r in body['results']] == ['ok', 'error']
    assert 'bad.jpg' in body['results'][1]['error']
    status, _, raw = request(base + '/v1/health')
    assert status == 200 and json.loads(raw)['model_loaded'] is True


def _post_too_large(base: str, chunked: bool) -> int:
    """Status of a 3 MB upload to a service that takes 2 MB."""
    import http.client
    host, port = base.split('//')[1].split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {'Content-Type': 'multipart/form-data; boundary=xyz'}
    if chunked:
        def body():
            yield (b'--xyz\r\nContent-Disposition: form-data; name="file";'
                   b' filename="a.jpg"\r\n\r\n')
            for _ in range(48):
                yield os.urandom(64 * 1024)
        try:
            conn.request('POST', '/v1/segment', body=body(), headers=headers,
                         encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service stopped reading: its answer is waiting
    else:
        conn.putrequest('POST', '/v1/segment')
        for k, v in dict(headers, **{'Content-Length': str(3 << 20)}
                         ).items():
            conn.putheader(k, v)
        conn.endheaders()  # no body sent: the answer comes first
    response = conn.getresponse()
    assert 'larger than' in json.loads(response.read())['error']
    conn.close()
    return response.status


def test_uploads_never_reach_the_disk_or_the_log(service, photos):
    """A 1.5 MB upload (Starlette spools files over 1 MB to a temporary
    file by default) adds no file to the service's TMPDIR; the access log
    names no file."""
    base, proc, tmp = service
    img = Image.fromarray(np.random.default_rng(0).integers(
        0, 255, (600, 600, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, 'PNG')
    data = buf.getvalue()
    assert len(data) > 1024 * 1024
    before = sorted(os.listdir(tmp))  # what start-up left (a session id)
    status, _, body = segment(base, [('file', 'secret-plate-AB123.png',
                                      data)])
    assert status == 200, body
    assert sorted(os.listdir(tmp)) == before
    with open(proc.log_path) as f:
        log = f.read()
    assert '"route": "/v1/segment"' in log and 'secret-plate' not in log


def test_model_and_metrics_routes(service, exported_models):
    base, _, _ = service
    status, _, raw = request(base + '/v1/model')
    info = json.loads(raw)
    assert status == 200 and info['backend'] == 'onnxruntime'
    assert info['classes'] == ['background', 'damage']
    assert len(info['model_sha256']) == 64
    status, _, raw = request(base + '/metrics')
    text = raw.decode()
    assert status == 200
    assert 'cardamage_requests_total{route="/v1/segment",status="200"}' \
        in text
    assert 'cardamage_batch_size_total' in text
    status, _, raw = request(base + '/openapi.json')
    assert '/v1/segment' in json.loads(raw)['paths']
    status, _, raw = request(base + '/')
    assert status == 200 and b'<script>' in raw and b'http' not in \
        raw.split(b'<script>')[1].split(b'fetch(')[0]


def test_api_key_and_overload(exported_models, photos):
    """With --api-key every /v1 route needs it; with a queue of one photo
    a burst is answered 503 + Retry-After, never an unbounded queue."""
    with served(exported_models['b0'], '--api-key', 's3cret',
                '--max-queue', '2', '--max-batch', '1', '--max-wait-ms',
                '0', '--threads', '1') as (base, proc):
        status, _, raw = request(base + '/v1/model')
        assert status == 401 and 'API key' in json.loads(raw)['error']
        status, _, body = segment(base, [('file', 'a.jpg',
                                          photos['1.jpg'])])
        assert status == 401
        key = {'X-API-Key': 's3cret'}
        status, _, body = segment(base, [('file', 'a.jpg', photos['1.jpg'])
                                         ] * 3, headers=key)
        assert status == 413 and 'more than the queue holds' in body['error']
        statuses, retry = [], []

        def client() -> None:
            for _ in range(4):
                s, h, _ = segment(base, [('file', 'a.jpg', photos['1.jpg'])
                                         ] * 2, headers=key)
                statuses.append(s)
                if s == 503:
                    retry.append(h.get('retry-after'))
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(statuses) <= {200, 503}
        assert 503 in statuses and 200 in statuses
        assert set(retry) == {'1'}
        status, _, _ = request(base + '/v1/health', headers=key)
        assert status == 200
