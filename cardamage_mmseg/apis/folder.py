"""Segment many photo files at the pace of the model.

Three stages overlap: data-loader workers decode photos only as large as
needed (JPEG DCT scaling) and prepare the model inputs (the segmenter's
``make_loader``: PyTorch's DataLoader processes for the PyTorch backend;
else :class:`ThreadedLoader`, threads, for the torch-free ONNX runtime);
the main process batches the model calls; a pool of writer processes
upsamples each mask to the photo's size, computes its report and writes
its files (``core.result.finish``, ``core.outputs.write_outputs``:
torch-free). On few cores, processes beside the model slow its threads
down; ``lockstep`` runs the same stages in threads between the model
calls instead, so the model has the cores to itself.
Reports come back in input order; a photo that fails is one error row;
Ctrl-C, a crashed worker or a full disk end the run with the rows that
finished (``FolderRun.stopped`` says why).

Why not mmseg's inferencer or a plain loop: both decode, run the model,
upsample every class and write in one thread, so on 12 MP photos the CPU
work around the model, not the model, sets the pace.
"""
import multiprocessing
import os
import signal
import time
from concurrent.futures import (FIRST_COMPLETED, Executor, Future,
                                ProcessPoolExecutor, ThreadPoolExecutor)
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence
from typing import Tuple

from ..core.files import DISK_ERRNOS
from ..core.inputs import Item
from ..core.outputs import OVERLAY_MAX_SIDE, WriteTask, write_photo
from ..core.segmenter import PhotoSegmenter


@dataclass
class FolderRun:
    """What :func:`segment_files` did: report ``rows`` in input order
    (status ok / error) and ``indices``, the position in ``items`` of each
    (a run that stopped early has rows for some items only), counts,
    seconds in the model and in all, and ``stopped``: why the run ended
    early ('' if it did not)."""
    rows: List[Dict] = field(default_factory=list)
    indices: List[int] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    model_seconds: float = 0.0
    seconds: float = 0.0
    stopped: str = ''
    interrupted: bool = False


class _PhotoFiles:
    """Photo ``i`` -> (i, Prepared or None, error message): a map-style
    data set (PyTorch's DataLoader takes it as it is)."""

    def __init__(self, segmenter: PhotoSegmenter, items: Sequence[Item],
                 overlay_max_side: Optional[int]) -> None:
        self.segmenter = segmenter
        self.items = list(items)
        self.overlay_max_side = overlay_max_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path = self.items[i][0]
        try:
            return i, self.segmenter.prepare_file(path,
                                                  self.overlay_max_side), ''
        except Exception as err:  # unreadable, above the pixel limit, ...
            return i, None, str(err)


class ThreadedLoader:
    """Batches (lists) of ``dataset[i]`` in order, prepared by
    ``num_workers`` threads (0: in the calling thread), up to ``ahead``
    batches ahead (0: a batch is started when it is asked for), in
    ``pool`` if given (shared with other work) else in threads of its
    own. The torch-free runtime's loader: decoding (Pillow, OpenCV)
    and the resize release the GIL, and threads share the model file's
    session without forking it."""

    def __init__(self, dataset: Any, batch_size: int, num_workers: int,
                 ahead: int = 2, pool: Optional[Executor] = None) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.num_workers, self.ahead, self.pool = num_workers, ahead, pool

    def __iter__(self) -> Iterator[list]:
        n, size = len(self.dataset), self.batch_size
        starts = range(0, n, size)
        if not self.num_workers:
            for s in starts:
                yield [self.dataset[i] for i in range(s, min(n, s + size))]
            return
        pool = self.pool or ThreadPoolExecutor(self.num_workers)
        try:
            queued: List[list] = []
            for s in starts:
                queued.append([pool.submit(self.dataset.__getitem__, i)
                               for i in range(s, min(n, s + size))])
                if len(queued) > self.ahead:
                    yield [f.result() for f in queued.pop(0)]
            for futures in queued:
                yield [f.result() for f in futures]
        finally:
            if self.pool is None:
                pool.shutdown(wait=True, cancel_futures=True)


def _writer_init() -> None:
    # Ctrl-C reaches the whole process group: writers finish the photo in
    # hand, the main process decides what happens next
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else (os.cpu_count() or 1)


def default_workers() -> Tuple[int, int]:
    """(data-loader workers, writer processes) for this machine: a quarter
    of the cores each, at least one."""
    cores = usable_cores()
    return max(1, cores // 4), max(1, cores // 4)


def default_lockstep(device: str, num_workers: Optional[int],
                     num_writers: Optional[int]) -> int:
    """Lockstep threads when none are asked for: one per core for a model
    on the CPU (it needs every core while it runs: processes beside it
    cost more than they overlap, docs/speed.md), unless worker or writer
    processes are asked for; 0 (processes) for a GPU model."""
    if num_workers is not None or num_writers is not None:
        return 0
    return usable_cores() if str(device) == 'cpu' else 0


def segment_files(segmenter: PhotoSegmenter, items: Sequence[Item],
                  out: str, batch_size: int = 1,
                  num_workers: Optional[int] = None,
                  num_writers: Optional[int] = None,
                  opacity: float = 0.5,
                  overlay_max_side: Optional[int] = OVERLAY_MAX_SIDE,
                  progress: Optional[Callable[[int], None]] = None,
                  save_probs: bool = False,
                  lockstep: Optional[int] = None) -> FolderRun:
    """Segment the photo files ``items`` [(path, output name)] into
    ``out`` (module docstring). ``num_workers``/``num_writers``: None for
    :func:`default_workers`, 0 to run that stage in this process.
    ``overlay_max_side``: the overlays' longest side (0: the photo's,
    None: no overlays); ``save_probs``: also write the model-resolution
    scores (``core.outputs``). ``progress(n)`` is called as photos
    finish. ``lockstep`` > 0: no worker or writer processes; while the
    model waits, this many threads finish the last batch and prepare the
    next, then the model runs alone on the cores (where the model runs
    on the CPU, processes beside it slow its threads down:
    docs/speed.md); None: :func:`default_lockstep`."""
    if lockstep is None:
        lockstep = default_lockstep(segmenter.device, num_workers,
                                    num_writers)
    workers, writers = default_workers()
    workers = workers if num_workers is None else num_workers
    writers = writers if num_writers is None else num_writers
    run = FolderRun()
    rows: Dict[int, Dict] = {}
    start = time.perf_counter()

    def failed(i: int, why: str) -> None:
        rows[i] = dict(file=items[i][0], status='error', error=why)
        run.failed += 1
        if progress:
            progress(1)

    dataset = _PhotoFiles(segmenter, items, overlay_max_side)
    make_loader = getattr(segmenter, 'make_loader', None)
    pool: Optional[Executor] = None
    if lockstep:
        pool = ThreadPoolExecutor(lockstep)
        loader: Any = ThreadedLoader(dataset, batch_size, lockstep, ahead=0,
                                     pool=pool)
        writers = lockstep
    else:
        loader = (make_loader(dataset, batch_size, workers) if make_loader
                  else ThreadedLoader(dataset, batch_size, workers))
    # fork: writers start at once (forkserver or spawn import the main
    # script, torch included: 5 s). The price: a forked process whose
    # parent's OpenMP threads have just run hangs in its first OpenMP
    # call (seen here in torch.set_num_threads), so writers stay
    # torch-free: what they run (the core, ensembles' fusion included)
    # is numpy and OpenCV.
    if writers and not lockstep:
        pool = ProcessPoolExecutor(
            writers, mp_context=multiprocessing.get_context('fork'),
            initializer=_writer_init)
    pending: Dict[Future, int] = {}

    def collect(futures) -> None:
        for future in futures:
            i = pending.pop(future)
            try:
                rows[i] = future.result()
            except OSError as err:
                if err.errno in DISK_ERRNOS:  # every later write fails too
                    raise _Stop(f'cannot write the outputs: {err}') from None
                failed(i, f'cannot write its outputs: {err}')
                continue
            except Exception as err:
                failed(i, f'{type(err).__name__}: {err}')
                continue
            run.done += 1
            if progress:
                progress(1)

    def submit(i: int, prepared, log_probs) -> None:
        path, name = items[i]
        task = WriteTask(out, name, path, log_probs, prepared.size,
                         prepared.rgb, segmenter.combine,
                         segmenter.classes, segmenter.palette,
                         segmenter.min_region_fraction, opacity,
                         segmenter.identity, overlay_max_side, save_probs)
        if pool is None:
            future: Future = Future()
            try:
                future.set_result(write_photo(task))
            except Exception as err:
                future.set_exception(err)
            pending[future] = i
            collect([future])
            return
        pending[pool.submit(write_photo, task)] = i
        # bounded memory in flight (lockstep: a batch at most)
        while not lockstep and len(pending) > 2 * writers:
            done, _ = wait_futures(list(pending), return_when=FIRST_COMPLETED)
            collect(done)

    try:
        for batch in loader:
            ready = []
            for i, prepared, error in batch:
                if prepared is None:
                    failed(i, error)
                else:
                    ready.append((i, prepared))
            if lockstep:  # the cores are the model's now
                collect(list(pending))
            t0 = time.perf_counter()
            results = _forward_each(segmenter, ready, failed)
            run.model_seconds += time.perf_counter() - t0
            for (i, prepared), log_probs in zip(ready, results):
                if log_probs is not None:
                    submit(i, prepared, log_probs)
        collect(list(pending))
    except _Stop as stop:
        run.stopped = str(stop)
    except KeyboardInterrupt:
        run.stopped, run.interrupted = 'stopped by the user (Ctrl-C)', True
    except Exception as err:  # a crashed data-loader or writer process
        run.stopped = f'stopped: {type(err).__name__}: {err}'
    finally:
        if pool is not None:  # photos in hand finish, queued ones do not
            pool.shutdown(wait=True, cancel_futures=True)
            try:
                collect([f for f in pending
                         if f.done() and not f.cancelled()])
            except _Stop:
                pass
    run.indices = sorted(rows)
    run.rows = [rows[i] for i in run.indices]
    run.seconds = time.perf_counter() - start
    return run


class _Stop(Exception):
    """Ends a run: the message says why."""


def _forward_each(segmenter: PhotoSegmenter, ready, failed) -> list:
    """Log-probabilities of a batch; if the batch fails, each photo alone,
    so only the photo that fails is lost (``failed(i, why)``, None)."""
    if not ready:
        return []
    try:
        return segmenter.forward([p for _, p in ready])
    except Exception as err:  # out of memory, a model that cannot take it
        if len(ready) == 1:
            failed(ready[0][0], f'{type(err).__name__}: {err}')
            return [None]
    return [_forward_each(segmenter, [r], failed)[0] for r in ready]
