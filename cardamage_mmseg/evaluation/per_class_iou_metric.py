"""IoUMetric that also returns each class's IoU.

Why this is ours: mmseg's ``IoUMetric`` prints the per-class table but
returns only means (mIoU, aAcc, mAcc). For car damage the number that
matters is the *damage* IoU (the study reports it next to mIoU), so this
subclass also returns ``IoU.<class>`` (percent), which then reaches the
logs, the metrics JSON of ``tools/test.py``, ``save_best`` and the scripts.
"""
from typing import Dict

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """Same arguments as :class:`mmseg.evaluation.IoUMetric`."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only or not results:
            return metrics
        area_intersect, area_union = (sum(r[0] for r in results),
                                      sum(r[1] for r in results))
        iou = (area_intersect / area_union).numpy()
        for name, value in zip(self.dataset_meta['classes'], iou):
            value = float(value) if np.isfinite(value) else float('nan')
            metrics[f'IoU.{name}'] = round(value * 100, 2)
        return metrics
