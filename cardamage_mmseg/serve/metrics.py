"""Prometheus text metrics of the service, kept by hand (a few counters
and histograms: no client library needed)."""
import threading
from collections import defaultdict
from typing import Dict, Tuple

from .batcher import BatchStats

#: latency histogram buckets, seconds
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Requests by route and status, latency, photos that failed, and the
    batcher's batch sizes."""

    def __init__(self, batches: BatchStats) -> None:
        self.batches = batches
        self._lock = threading.Lock()
        self.requests: Dict[Tuple[str, int], int] = defaultdict(int)
        self.latency: Dict[str, list] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: Dict[str, float] = defaultdict(float)
        self.photo_errors = 0

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            buckets = self.latency[route]
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    buckets[i] += 1
            buckets[-1] += 1  # +Inf
            self.latency_sum[route] += seconds

    def failed(self, photos: int) -> None:
        with self._lock:
            self.photo_errors += photos

    def render(self) -> str:
        lines = ['# TYPE cardamage_requests_total counter']
        with self._lock:
            for (route, status), n in sorted(self.requests.items()):
                lines.append(f'cardamage_requests_total{{route="{route}",'
                             f'status="{status}"}} {n}')
            lines.append('# TYPE cardamage_request_seconds histogram')
            for route, buckets in sorted(self.latency.items()):
                for edge, n in zip(BUCKETS, buckets):
                    lines.append(f'cardamage_request_seconds_bucket{{route='
                                 f'"{route}",le="{edge}"}} {n}')
                lines.append(f'cardamage_request_seconds_bucket{{route='
                             f'"{route}",le="+Inf"}} {buckets[-1]}')
                lines.append(f'cardamage_request_seconds_sum{{route='
                             f'"{route}"}} {self.latency_sum[route]:.6f}')
                lines.append(f'cardamage_request_seconds_count{{route='
                             f'"{route}"}} {buckets[-1]}')
            lines.append('# TYPE cardamage_photo_errors_total counter')
            lines.append(f'cardamage_photo_errors_total {self.photo_errors}')
        stats = self.batches
        lines.append('# TYPE cardamage_batches_total counter')
        lines.append(f'cardamage_batches_total {stats.batches}')
        lines.append('# TYPE cardamage_batched_photos_total counter')
        lines.append(f'cardamage_batched_photos_total {stats.photos}')
        lines.append('# TYPE cardamage_model_seconds_total counter')
        lines.append(f'cardamage_model_seconds_total '
                     f'{stats.model_seconds:.6f}')
        lines.append('# TYPE cardamage_batch_size_total counter')
        for size, n in sorted(dict(stats.sizes).items()):
            lines.append(f'cardamage_batch_size_total{{size="{size}"}} {n}')
        return '\n'.join(lines) + '\n'
