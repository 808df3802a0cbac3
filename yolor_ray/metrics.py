"""The metric names runs report and rank by, and the AP table printed after a run."""
from __future__ import annotations

SCORE_METRIC = "coco/bbox_mAP"  # what ranks checkpoints and runs
TRAIN_LOSS = "train/loss"
RESTARTS = "restarts"  # reported with each epoch: worker-group restarts so far
# CocoMetric's keys, in the reference table's column order.
AP_KEYS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")
COCO_PREFIXES = ("coco/bbox", "coco/segm")


def coco_keys(task: str) -> list[str]:
    """CocoMetric's keys for one task ('bbox', 'segm')."""
    return [f"coco/{task}_{key}" for key in AP_KEYS]


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
