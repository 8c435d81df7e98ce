"""The damage-assessment service: an HTTP API and a review page.

Why FastAPI + uvicorn (not LitServe, not TorchServe): the model is driven
by this package's own :class:`~.batcher.Batcher` (one thread owns it,
concurrent photos share batches), so the framework only has to parse
requests, validate and document them (OpenAPI at ``/docs``), which FastAPI
does with no model-server conventions to bend; TorchServe (mmseg's answer)
is in limited maintenance, LitServe's batching assumes one input per
request where ours may carry several photos.

    POST /v1/segment   multipart field ``file`` (repeated for several);
                       ``?overlay=true`` adds the overlay JPEG
    GET  /v1/health    liveness and model loaded
    GET  /v1/model     classes, palette, backend, device, model identity
    GET  /metrics      Prometheus text: requests, latency, batch sizes
    GET  /             the review page (static HTML/JS, no CDN)

Uploads are read into memory within ``max_upload_bytes`` (never spooled to
disk), decoded with the limits of ``tools/infer.py`` (pixel limit, EXIF
orientation), and neither kept nor logged; a bad photo is a 4xx JSON error
naming it (or, among several, an error entry), a full queue 503 with
Retry-After, a slow answer 504.
"""
import base64
import hmac
import json
import logging
import os.path as osp
import time
import uuid
from contextlib import asynccontextmanager
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..core.image import ImageReadError, encode_image, load_rgb
from ..core.overlay import add_legend, overlay, shrink_for_display
from ..core.palette import flat_palette
from ..core.segmenter import PhotoSegmenter
from .batcher import Batcher, Overloaded
from .metrics import Metrics

API_VERSION = 'v1'
STATIC = osp.join(osp.dirname(osp.abspath(__file__)), 'static')
log = logging.getLogger('cardamage_mmseg.serve')


@dataclass
class ServiceSettings:
    """Limits and switches of the service (``tools/serve.py`` flags)."""
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    max_upload_bytes: int = 20 * 1024 * 1024
    max_files: int = 16
    timeout_s: float = 30.0
    api_key: Optional[str] = None
    cors_origins: Sequence[str] = ()
    overlay_max_side: int = 1000


class ApiError(Exception):
    """A request the service refuses: HTTP ``status`` and a message."""

    def __init__(self, status: int, message: str,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _png_b64(mask: np.ndarray, palette) -> str:
    img = Image.fromarray(mask, mode='P')
    img.putpalette(flat_palette(palette))
    return base64.b64encode(encode_image(img, 'PNG',
                                         compress_level=1)).decode()


def _overlay_b64(rgb: np.ndarray, mask: np.ndarray, report: Dict,
                 classes, palette, max_side: int) -> str:
    small_rgb, small_mask = shrink_for_display(rgb, mask, max_side)
    drawn = add_legend(
        overlay(small_rgb, small_mask, palette, 0.5), classes, palette,
        f'damage {report["damage_share"] * 100:.1f}%, '
        f'{report["num_regions"]} region(s)')
    return base64.b64encode(encode_image(Image.fromarray(drawn), 'JPEG',
                                         quality=90)).decode()


class _InMemoryParser(MultiPartParser):
    """Starlette's multipart parser, files kept in memory: the request
    body is bounded already, and photos must not reach the disk."""

    def __init__(self, *args, limit: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spool_max_size = limit + 1


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f'upload larger than {limit} bytes (the '
                           f'service\'s --max-upload-bytes)')
        yield chunk


def create_app(segmenter: PhotoSegmenter, settings: ServiceSettings,
               info: Optional[Dict[str, Any]] = None) -> FastAPI:
    """The service around ``segmenter`` (a DamageSegmenter of a config or
    of an exported model); ``info``: what ``GET /v1/model`` adds about
    the model (config, checkpoint hash, backend)."""
    batcher = Batcher(segmenter.forward, settings.max_batch,
                      settings.max_wait_ms / 1000.0, settings.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    app = FastAPI(title='cardamage-mmseg damage assessment',
                  version=API_VERSION, lifespan=lifespan,
                  description='Car-damage masks, shares and regions.')
    metrics = Metrics(batcher.stats)
    app.state.batcher, app.state.metrics = batcher, metrics
    model_info = dict(
        classes=list(segmenter.classes),
        palette=[list(map(int, c)) for c in segmenter.palette],
        device=str(segmenter.device), identity=segmenter.identity,
        max_batch=settings.max_batch, max_pixels=segmenter.max_pixels,
        max_upload_bytes=settings.max_upload_bytes,
        max_files=settings.max_files, **(info or {}))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware,
                           allow_origins=list(settings.cors_origins),
                           allow_methods=['GET', 'POST'],
                           allow_headers=['X-API-Key', 'Authorization'])

    @app.middleware('http')
    async def access_log(request: Request, call_next):
        """One structured line per request: no image content, no file
        names (they may name a customer)."""
        request_id = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        try:
            if request.url.path.startswith(f'/{API_VERSION}/'):
                _check_key(request, settings.api_key)
            response = await call_next(request)
        except ApiError as err:
            response = _error(err)
        seconds = time.perf_counter() - t0
        route = request.url.path if request.url.path in KNOWN else 'other'
        metrics.request(route, response.status_code, seconds)
        response.headers['X-Request-ID'] = request_id
        log.info(json.dumps(dict(
            request_id=request_id, method=request.method, route=route,
            status=response.status_code, ms=round(seconds * 1000, 1),
            photos=getattr(request.state, 'photos', 0))))
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return _error(err)

    @app.get(f'/{API_VERSION}/health')
    async def health() -> Dict[str, Any]:
        """Liveness; ``model_loaded`` once the model answers."""
        alive = batcher._thread.is_alive()
        return dict(status='ok' if alive else 'error', model_loaded=alive)

    @app.get(f'/{API_VERSION}/model')
    async def model() -> Dict[str, Any]:
        """The model: classes, palette, backend, device, identity."""
        return model_info

    @app.post(f'/{API_VERSION}/segment')
    async def segment(request: Request,
                      overlay: bool = Query(False, description='add the '
                                            'overlay JPEG (base64)'),
                      mask: bool = Query(True, description='add the mask '
                                         'PNG (base64, class ids)')
                      ) -> Dict[str, Any]:
        """Segment the photos of multipart field ``file`` (repeat it for
        several): per photo the report of tools/infer.py, the mask as a
        palette PNG (pixel values = class ids) and, with
        ``overlay=true``, the overlay."""
        uploads = await _read_uploads(request, settings)
        request.state.photos = len(uploads)
        return await run_in_threadpool(
            _segment_uploads, segmenter, batcher, uploads, settings,
            overlay, mask, metrics)

    @app.get('/metrics', response_class=PlainTextResponse)
    async def prometheus() -> str:
        """Prometheus text format."""
        return metrics.render()

    @app.get('/', include_in_schema=False)
    async def page():
        return FileResponse(osp.join(STATIC, 'index.html'),
                            media_type='text/html')

    KNOWN = {f'/{API_VERSION}/health', f'/{API_VERSION}/model',
             f'/{API_VERSION}/segment', '/metrics', '/'}
    return app


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(dict(error=err.message, status=err.status),
                        status_code=err.status, headers=err.headers)


def _check_key(request: Request, key: Optional[str]) -> None:
    if not key:
        return
    given = request.headers.get('x-api-key') or ''
    auth = request.headers.get('authorization') or ''
    if auth.lower().startswith('bearer '):
        given = given or auth[7:]
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(401, 'missing or wrong API key (header X-API-Key or '
                       'Authorization: Bearer)')


async def _read_uploads(request: Request, settings: ServiceSettings
                        ) -> List[tuple]:
    """[(name, bytes)] of the request's ``file`` fields, read in memory
    within the byte limit."""
    length = request.headers.get('content-length')
    limit = settings.max_upload_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f'upload of {length} bytes is larger than '
                       f'{limit} (the service\'s --max-upload-bytes)')
    ctype = request.headers.get('content-type', '')
    if not ctype.startswith('multipart/form-data'):
        raise ApiError(415, 'send the photos as multipart/form-data, field '
                       '"file" (curl -F file=@photo.jpg)')
    parser = _InMemoryParser(request.headers, _limited(request, limit),
                             max_files=settings.max_files, max_fields=20,
                             max_part_size=limit, limit=limit)
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise ApiError(400, f'bad multipart body: {err}') from None
    try:
        files = [f for f in form.getlist('file') if isinstance(f, UploadFile)]
        other = sorted({k for k, v in form.multi_items()
                        if isinstance(v, UploadFile) and k != 'file'})
        if not files:
            raise ApiError(422, 'no photo in field "file"' + (
                f' (the request has file field(s) {other}: name them '
                f'"file")' if other else ''))
        uploads = []
        for i, f in enumerate(files):
            data = await f.read()
            name = f'file {i}' + (f' ({f.filename})' if f.filename else '')
            if not data:
                raise ApiError(400, f'{name} is empty')
            uploads.append((name, data))
        return uploads
    finally:
        await form.close()


def _segment_uploads(segmenter: PhotoSegmenter, batcher: Batcher,
                     uploads: List[tuple], settings: ServiceSettings,
                     want_overlay: bool, want_mask: bool,
                     metrics: Metrics) -> Dict[str, Any]:
    """Decode, batch, finish (in a worker thread; the model runs in the
    batcher's)."""
    decoded, errors = [], {}
    for i, (name, data) in enumerate(uploads):
        try:
            rgb, _ = load_rgb(data, i, segmenter.max_pixels)
            decoded.append((i, name, rgb, segmenter.prepare(rgb, name)))
        except ImageReadError as err:
            msg = str(err).replace(f'<bytes {i}>', name)
            errors[i] = (413 if 'pixel limit' in msg else 400, msg)
    if errors and not decoded:
        status, msg = errors[min(errors)]
        if len(uploads) > 1:
            msg = '; '.join(m for _, m in errors.values())
        metrics.failed(len(errors))
        raise ApiError(status, msg)
    try:
        futures = batcher.submit([prepared for *_, prepared in decoded])
    except Overloaded as err:
        raise ApiError(503, f'busy: {err}; retry shortly',
                       {'Retry-After': '1'}) from None
    except ValueError as err:  # more photos than the queue can ever hold
        raise ApiError(413, f'{err}: send fewer per request') from None
    deadline = time.monotonic() + settings.timeout_s
    results: List[Optional[Dict]] = [None] * len(uploads)
    for (i, name, rgb, prepared), future in zip(decoded, futures):
        try:
            log_probs = future.result(max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            for f in futures:
                f.cancel()
            raise ApiError(504, f'no answer from the model within '
                           f'{settings.timeout_s:g} s') from None
        except Exception as err:  # the model failed on this photo
            errors[i] = (500, f'{name}: the model failed: '
                         f'{type(err).__name__}: {err}')
            continue
        result = segmenter.finish(log_probs, prepared.size, name)
        entry: Dict[str, Any] = dict(file=name, status='ok',
                                     **result.report)
        if want_mask:
            entry['mask_png'] = _png_b64(result.mask, segmenter.palette)
        if want_overlay:
            entry['overlay_jpeg'] = _overlay_b64(
                rgb, result.mask, result.report, segmenter.classes,
                segmenter.palette, settings.overlay_max_side)
        results[i] = entry
    for i, (status, msg) in errors.items():
        results[i] = dict(file=uploads[i][0], status='error', error=msg)
    metrics.failed(len(errors))
    return dict(model=segmenter.identity, results=results)
