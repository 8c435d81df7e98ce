"""Helpers of the service tests: start tools/serve.py as its own process on
a free loopback port, talk HTTP to it with the standard library."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple

from conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextmanager
def served(model: str, *args: str, env: Optional[Dict] = None,
           timeout: float = 120.0):
    """Run ``tools/serve.py model args`` until the block ends; yields
    (base URL, process). Waits for /v1/health. The service's output goes
    to a file (``proc.log_path``; a pipe nobody reads would fill up and
    stop it)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile('w+', prefix='serve-', suffix='.log',
                                      delete=False)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, 'tools', 'serve.py'), model,
         *args, '--port', str(port)], cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, **(env or {})))
    proc.log_path = log.name
    base = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError('the service exited: ' +
                                   open(log.name).read()[-3000:])
            try:
                status, _, _ = request(base + '/v1/health', timeout=2,
                                       headers=_key_header(args))
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('the service did not start')
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _key_header(args: Sequence[str]) -> Dict[str, str]:
    if '--api-key' in args:
        return {'X-API-Key': args[list(args).index('--api-key') + 1]}
    return {}


def multipart(files: List[Tuple[str, str, bytes]]) -> Tuple[bytes, str]:
    """(body, content type) of [(field, file name, bytes)]."""
    boundary = uuid.uuid4().hex
    parts = []
    for field, name, data in files:
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; '
                      f'name="{field}"; filename="{name}"\r\nContent-Type: '
                      f'application/octet-stream\r\n\r\n').encode() + data +
                     b'\r\n')
    body = b''.join(parts) + f'--{boundary}--\r\n'.encode()
    return body, f'multipart/form-data; boundary={boundary}'


def request(url: str, data: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None, timeout: float = 60
            ) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers (lower-case names), body) of one HTTP request
    (errors included)."""
    req = urllib.request.Request(url, data=data, headers=headers or {},
                                 method='POST' if data is not None else 'GET')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, _lower(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers), err.read()


def _lower(headers) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def segment(base: str, files: List[Tuple[str, str, bytes]],
            query: str = '', headers: Optional[Dict[str, str]] = None,
            timeout: float = 60) -> Tuple[int, Dict[str, str], dict]:
    body, ctype = multipart(files)
    status, hdrs, raw = request(f'{base}/v1/segment{query}', body,
                                dict(headers or {}, **{'Content-Type': ctype}),
                                timeout)
    return status, hdrs, json.loads(raw)
