"""Serve a damage model over HTTP: the API, its OpenAPI page and a review
page for people.

    python tools/serve.py MODEL [CHECKPOINT] [--host 127.0.0.1] [--port 8000]
        [--device cpu|cuda:0] [--max-batch 8] [--max-wait-ms 10]
        [--max-queue 64] [--max-connections 256] [--timeout 30]
        [--max-upload-mb 20] [--max-files 16]
        [--max-pixels 100000000] [--api-key KEY] [--cors-origin URL ...]
        [--threads N] [--shape-sessions 0] [--tta] [--min-region 0.0005]

MODEL: a config (a single model, an ensemble config with no CHECKPOINT, a
distilled student) run by PyTorch, or a model exported by tools/export.py
(model.onnx, no CHECKPOINT) run by ONNX Runtime without torch. One model
per process, so that concurrent photos share batches; scale out with more
processes or replicas behind a load balancer.

    curl -F file=@car.jpg 'http://127.0.0.1:8000/v1/segment?overlay=true'

Routes: POST /v1/segment, GET /v1/health, GET /v1/model, GET /metrics,
GET / (review page), GET /docs (OpenAPI). The API key (--api-key or the
environment variable CARDAMAGE_API_KEY) is checked on every /v1 route
(header X-API-Key or Authorization: Bearer). Photos are read in memory
within the upload limit and never written or logged.
"""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.core.files import file_sha256  # noqa: E402
from cardamage_mmseg.core.image import MAX_PIXELS  # noqa: E402
from cardamage_mmseg.runtime import is_onnx_file  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('model', help='a config or an exported .onnx')
    p.add_argument('checkpoint', nargs='?')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=8000)
    p.add_argument('--device', help='cpu, cuda, cuda:1 (default: cuda for '
                   'a config where there is one, else cpu)')
    p.add_argument('--max-batch', type=int, default=8)
    p.add_argument('--max-wait-ms', type=float, default=10.0,
                   help='how long the first photo of a batch waits for '
                   'others')
    p.add_argument('--max-queue', type=int, default=64,
                   help='photos waiting for the model before 503')
    p.add_argument('--max-connections', type=int, default=256,
                   help='open connections before uvicorn answers 503')
    p.add_argument('--timeout', type=float, default=30.0,
                   help='seconds a request may wait for the model (504)')
    p.add_argument('--max-upload-mb', type=float, default=20.0)
    p.add_argument('--max-files', type=int, default=16,
                   help='photos in one request')
    p.add_argument('--max-pixels', type=int, default=MAX_PIXELS)
    p.add_argument('--overlay-size', type=int, default=1000)
    p.add_argument('--api-key', default=os.environ.get('CARDAMAGE_API_KEY'))
    p.add_argument('--cors-origin', nargs='+', default=[],
                   help='origins allowed to call the API from a browser '
                   '(default: none)')
    p.add_argument('--threads', type=int, help='ONNX Runtime threads '
                   '(exported models)')
    p.add_argument('--shape-sessions', type=int, default=0,
                   help='sessions specialised to one input shape each '
                   '(exported models; default 0: one session for every '
                   'shape, as batch sizes change with the load)')
    p.add_argument('--tta', action='store_true')
    p.add_argument('--min-region', type=float, default=5e-4)
    p.add_argument('--log-level', default='info')
    args = p.parse_args(argv)
    if args.max_batch < 1 or args.max_queue < 1:
        p.error('--max-batch and --max-queue must be >= 1')
    if args.shape_sessions < 0:
        p.error('--shape-sessions must be >= 0')
    return args


def build(args):
    """(segmenter, info) of the command line's model."""
    if is_onnx_file(args.model):
        from cardamage_mmseg.runtime import OnnxSegmenter
        if args.checkpoint:
            raise UsageError('an exported model holds its weights: no '
                             'CHECKPOINT')
        seg = OnnxSegmenter(args.model, device=args.device or 'cpu',
                            tta=args.tta,
                            min_region_fraction=args.min_region,
                            max_pixels=args.max_pixels,
                            threads=args.threads,
                            shape_sessions=args.shape_sessions)
        info = dict(backend='onnxruntime', model=osp.basename(args.model),
                    model_sha256=file_sha256(args.model),
                    source=seg.meta.get('source'))
        return seg, info
    from cardamage_mmseg.apis import DamageSegmenter
    device = args.device
    if device is None:
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    seg = DamageSegmenter(args.model, args.checkpoint, device, args.tta,
                          args.min_region, max_pixels=args.max_pixels)
    info = dict(backend='pytorch', config=osp.basename(args.model),
                checkpoint=osp.basename(args.checkpoint or ''),
                checkpoint_sha256=file_sha256(args.checkpoint)
                if args.checkpoint else None)
    return seg, info


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import uvicorn
        from cardamage_mmseg.serve import ServiceSettings, create_app
    except ImportError as err:
        raise UsageError(f'the service needs FastAPI and uvicorn ({err}): '
                         f'pip install cardamage-mmseg[serve]') from None
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise UsageError(f'checkpoint {args.checkpoint} not found')
    segmenter, info = build(args)
    settings = ServiceSettings(
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_files=args.max_files, timeout_s=args.timeout,
        api_key=args.api_key or None, cors_origins=args.cors_origin,
        overlay_max_side=args.overlay_size)
    app = create_app(segmenter, settings, info)
    logging.basicConfig(level=args.log_level.upper(),
                        format='%(asctime)s %(name)s %(message)s')
    print(f'serving {args.model} ({info["backend"]}, {segmenter.device}) '
          f'on http://{args.host}:{args.port}/  (API: /v1, docs: /docs)',
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port,
                log_level=args.log_level, access_log=False,
                limit_concurrency=args.max_connections)
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
