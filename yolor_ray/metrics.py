"""The metric names runs report and rank by, and the AP table printed after a run."""
from __future__ import annotations

SCORE_METRIC = "coco/bbox_mAP"  # what ranks checkpoints and runs
TRAIN_LOSS = "train/loss"
# CocoMetric's keys, in the seed table's column order.
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
