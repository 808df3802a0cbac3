"""The project's COCO metric: mmdet's CocoMetric, evaluated by faster-coco-eval's COCOeval when
it is installed (the same 12 stats as pycocotools', in a fraction of the time: bench/coco_eval.py),
reporting COCOeval's unrounded APs beside mmdet's, which rounds them to 0.001.

mmdet's ``CocoMetric.compute_metrics`` builds its evaluator from the module-level name
``COCOeval`` of ``mmdet.evaluation.metrics.coco_metric`` (``COCOevalMP`` with ``use_mp_eval``)
and keeps it local. So this subclass runs mmdet's own ``compute_metrics`` with those names
bound, for the call, to factories that build the chosen backend's evaluator and keep each
one: their ``stats`` are the unrounded values.
"""
from __future__ import annotations

import contextlib
import importlib.util
import threading
from typing import Callable, Iterator

from mmdet.datasets.api_wrappers import COCOeval as PycocotoolsCOCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric
from mmengine.logging import MMLogger

from yolor_ray.config.load import ConfigError
from yolor_ray.metrics import COCO_EVAL_BACKENDS, unrounded_key

# COCOeval.stats, in the order COCOeval summarizes them, under CocoMetric's item names.
STAT_ITEMS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l",
              "AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000")
DEFAULT_ITEMS = STAT_ITEMS[:6]  # what CocoMetric reports for 'bbox' and 'segm' without metric_items

_swapping = threading.RLock()  # the names are module-wide: one evaluation swaps them at a time


def faster_coco_eval_installed() -> bool:
    return importlib.util.find_spec("faster_coco_eval") is not None


def coco_eval_class(backend: str) -> type:
    """The COCOeval class of a backend: faster-coco-eval's (``faster``, when installed, else
    pycocotools') or pycocotools' (``pycocotools``, as mmdet's CocoMetric uses it)."""
    if backend not in COCO_EVAL_BACKENDS:
        raise ConfigError(f"the COCO evaluation backend must be one of {', '.join(COCO_EVAL_BACKENDS)}, "
                          f"got {backend!r}")
    if backend == "faster" and faster_coco_eval_installed():
        from faster_coco_eval import COCOeval_faster  # deferred: an optional C++ extension

        return COCOeval_faster
    return PycocotoolsCOCOeval


class UnroundedCocoMetric(CocoMetric):
    """mmdet's CocoMetric with a choice of COCOeval (``backend``: 'faster' or 'pycocotools') and,
    for every AP item it reports for 'bbox' and 'segm', the unrounded value as well:
    ``coco/bbox_mAP`` (0.123) and ``coco/bbox_unrounded_mAP`` (0.12345...). Every other argument
    and key is CocoMetric's."""

    def __init__(self, *args, backend: str = "faster", **kwargs) -> None:
        self.evaluator_class = coco_eval_class(backend)
        if backend == "faster" and self.evaluator_class is PycocotoolsCOCOeval:
            MMLogger.get_current_instance().warning(
                "faster-coco-eval is not installed: COCO evaluation uses pycocotools (pip install faster-coco-eval)")
        self.backend = backend
        super().__init__(*args, **kwargs)

    def compute_metrics(self, results: list) -> dict[str, float]:
        evaluators: list = []
        with _bound(COCOeval=_keeping(self.evaluator_class, evaluators),
                    COCOevalMP=_keeping(mmdet_coco_metric.COCOevalMP, evaluators)):
            eval_results = super().compute_metrics(results)
        # One evaluator per metric, in order, but none for 'proposal_fast' (no COCOeval) and none
        # after an empty detection set (mmdet stops there): zip pairs them as built.
        evaluated = [metric for metric in self.metrics if metric != "proposal_fast"]
        for metric, coco_eval in zip(evaluated, evaluators):
            if metric in ("bbox", "segm"):
                for item in self.metric_items or DEFAULT_ITEMS:
                    key = f"{metric}_{item}"
                    eval_results[unrounded_key(key)] = float(coco_eval.stats[STAT_ITEMS.index(item)])
        return eval_results


def _keeping(evaluator_class: type, kept: list) -> Callable:
    """A stand-in for an evaluator class: builds one and keeps it in ``kept``."""
    def build(*args, **kwargs):
        kept.append(evaluator_class(*args, **kwargs))
        return kept[-1]
    return build


@contextlib.contextmanager
def _bound(**names) -> Iterator[None]:
    """mmdet's coco_metric module with these names bound to these values, for the block."""
    with _swapping:
        before = {name: getattr(mmdet_coco_metric, name) for name in names}
        try:
            for name, value in names.items():
                setattr(mmdet_coco_metric, name, value)
            yield
        finally:
            for name, value in before.items():
                setattr(mmdet_coco_metric, name, value)
