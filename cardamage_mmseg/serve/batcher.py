"""Dynamic batching: photos of concurrent requests share model calls.

One thread owns the model. Requests put prepared photos on a bounded
queue; the thread takes the first, waits up to ``max_wait`` for more (up
to ``max_batch``), runs one :meth:`~..core.segmenter.PhotoSegmenter.
forward` over them and hands each caller its own log-probabilities (a
future per photo: results never cross requests). A full queue is refused
at once (:class:`Overloaded`: the service answers 503 with Retry-After),
never grown.
"""
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional


class Overloaded(Exception):
    """The queue is full: try again later."""


@dataclass
class BatchStats:
    """Counters the metrics page shows."""
    batches: int = 0
    photos: int = 0
    model_seconds: float = 0.0
    #: how many batches had each size
    sizes: dict = field(default_factory=dict)


class Batcher:
    """See the module docstring. ``forward(list) -> list`` runs the model
    on prepared photos (a failing batch is retried photo by photo, so one
    bad photo fails alone)."""

    def __init__(self, forward: Callable[[List[Any]], List[Any]],
                 max_batch: int = 8, max_wait: float = 0.01,
                 max_queue: int = 64) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError('max_batch and max_queue must be >= 1')
        self.forward = forward
        self.max_batch, self.max_wait = max_batch, max_wait
        self.queue: 'queue.Queue' = queue.Queue(max_queue)
        self.stats = BatchStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='model-batcher')
        self._thread.start()

    def submit(self, items: List[Any]) -> List[Future]:
        """Futures of ``forward([item])[0]`` for each item, queued all or
        none: :class:`Overloaded` when they do not fit in the queue now
        (only this method adds to it, under a lock, so the room it sees
        can only grow until it has put them)."""
        if len(items) > self.queue.maxsize:
            raise ValueError(f'{len(items)} photos in one request, more than '
                             f'the queue holds ({self.queue.maxsize})')
        futures = [Future() for _ in items]
        with self._lock:
            if self.queue.qsize() + len(items) > self.queue.maxsize:
                raise Overloaded(f'{self.queue.qsize()} photos are waiting '
                                 f'for the model (at most '
                                 f'{self.queue.maxsize})')
            for item, future in zip(items, futures):
                self.queue.put_nowait((item, future))
        return futures

    def close(self, timeout: Optional[float] = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _take(self) -> list:
        try:
            batch = [self.queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=left) if left > 0 else
                             self.queue.get_nowait())
            except queue.Empty:
                break
        return [(item, f) for item, f in batch
                if f.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            t0 = time.perf_counter()
            self._run(batch)
            stats = self.stats
            stats.batches += 1
            stats.photos += len(batch)
            stats.model_seconds += time.perf_counter() - t0
            stats.sizes[len(batch)] = stats.sizes.get(len(batch), 0) + 1

    def _run(self, batch: list) -> None:
        try:
            outputs = self.forward([item for item, _ in batch])
        except Exception as err:
            if len(batch) == 1:
                batch[0][1].set_exception(err)
                return
            for one in batch:  # find the photo that fails
                self._run([one])
            return
        for (_, future), out in zip(batch, outputs):
            future.set_result(out)
