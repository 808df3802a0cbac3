"""The metric names runs report and rank by, and the AP table printed after a run."""
from __future__ import annotations

SCORE_METRIC = "coco/bbox_mAP"  # what ranks checkpoints and runs
TRAIN_LOSS = "train/loss"
RESTARTS = "restarts"  # reported with each epoch: worker-group restarts so far
# CocoMetric's keys, in the reference table's column order.
AP_KEYS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")
COCO_PREFIXES = ("coco/bbox", "coco/segm")
# The project's COCO metric (engine.coco_metric; the config edits give it to every CocoMetric):
# CocoMetric's keys plus each AP unrounded (mmdet rounds to 0.001), and its COCOeval backends.
PROJECT_COCO_METRIC = "UnroundedCocoMetric"
COCO_METRIC_TYPES = ("CocoMetric", PROJECT_COCO_METRIC)
UNROUNDED = "unrounded"
COCO_EVAL_BACKENDS = ("faster", "pycocotools")  # faster-coco-eval's COCOeval (when installed), pycocotools'


def coco_keys(task: str) -> list[str]:
    """CocoMetric's keys for one task ('bbox', 'segm')."""
    return [f"coco/{task}_{key}" for key in AP_KEYS]


def unrounded_key(key: str) -> str:
    """The unrounded twin of one of CocoMetric's keys: 'coco/bbox_mAP_50' -> 'coco/bbox_unrounded_mAP_50'
    (a name no reader of the rounded keys matches: the task's prefix stays first, the item last)."""
    prefix, _, item = key.partition("_")
    return f"{prefix}_{UNROUNDED}_{item}"


def unrounded_coco_keys(task: str) -> list[str]:
    return [unrounded_key(key) for key in coco_keys(task)]


def is_coco_ap(key: str) -> bool:
    """One of CocoMetric's AP keys ('coco/bbox_mAP', 'coco/segm_mAP_75' ...): a fraction, 0.01 an AP point."""
    return any(key in coco_keys(task) for task in ("bbox", "segm"))


def unrounded(metrics: dict, key: str) -> float | None:
    """``key``'s value at full precision where the run reported it (the project's metric), else
    CocoMetric's rounded one (runs from before it, or a config's own metric); None where neither."""
    value = metrics.get(unrounded_key(key), metrics.get(key))
    return None if value is None else float(value)


def metric_prefixes(metrics: dict) -> list[str]:
    """The CocoMetric families present, e.g. ['coco/bbox', 'coco/segm']."""
    return [p for p in COCO_PREFIXES if f"{p}_mAP" in metrics]


def format_ap_table(metrics: dict) -> str:
    """A Markdown table of the COCO APs of one run (in %)."""
    header = "| task | AP | AP50 | AP75 | APs | APm | APl |\n| :-- | --: | --: | --: | --: | --: | --: |"
    rows = []
    for prefix in metric_prefixes(metrics):
        # COCO reports -1 where the split has no object of that size.
        cells = [f"{100 * metrics[key]:.1f}" if metrics.get(key, -1) >= 0 else "-"
                 for key in (f"{prefix}_{k}" for k in AP_KEYS)]
        rows.append(f"| {prefix.split('/')[1]} | " + " | ".join(cells) + " |")
    return "\n".join([header, *rows]) if rows else "(no COCO metrics were reported)"


def per_class_ap(metrics: dict, classes: list[str]) -> dict[str, float | None]:
    """Each class's AP from CocoMetric's classwise keys (``coco/CLASS_precision``; with
    several tasks, the last one's: segm for Mask R-CNN); None where COCO gave NaN or nothing."""
    found = {}
    for name in classes:
        value = metrics.get(f"coco/{name}_precision")
        found[name] = float(value) if isinstance(value, (int, float)) and value == value and value >= 0 else None
    return found


def format_per_class_table(per_class: dict[str, float | None]) -> str:
    """A Markdown table of each class's AP (in %)."""
    if not per_class:
        return "(no per-class AP was reported)"
    rows = [f"| {name} | {'-' if ap is None else f'{100 * ap:.1f}'} |" for name, ap in per_class.items()]
    return "\n".join(["| class | AP |", "| :-- | --: |", *rows])
