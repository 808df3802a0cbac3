"""The reference table (the YOLOR authors' MMDetection results, README's reference table): its
rows' short names, config files and figures.

Each row is a baseline config under ``configs/baseline`` and its YOLOR variant under
``configs/yolor`` (the same name with ``yolor_`` in front). Light: no torch, no mmdet.
"""
from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# short name -> the baseline config's file name, in the reference table's order
REFERENCE_ROWS: dict[str, str] = {
    "faster-rcnn": "faster-rcnn_r50_fpn_1x_coco.py",
    "mask-rcnn": "mask-rcnn_r50_fpn_1x_coco.py",
    "fcos": "fcos_r50-caffe_fpn_gn-head_1x_coco.py",
    "atss": "atss_r50_fpn_1x_coco.py",
    "sparse-rcnn": "sparse-rcnn_r50_fpn_1x_coco.py",
    "sparse-rcnn-3x": "sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py",
}
# How the reference table names each row.
ROW_TITLES: dict[str, str] = {"faster-rcnn": "Faster R-CNN", "mask-rcnn": "Mask R-CNN", "fcos": "FCOS",
                              "atss": "ATSS", "sparse-rcnn": "Sparse R-CNN", "sparse-rcnn-3x": "Sparse R-CNN 3x"}


def baseline_config(row: str) -> Path:
    return CONFIGS / "baseline" / REFERENCE_ROWS[row]


def yolor_config(row: str) -> Path:
    return CONFIGS / "yolor" / f"yolor_{REFERENCE_ROWS[row]}"


# The reference table's own figures (the YOLOR authors' MMDetection results, README), in %:
# box AP, AP50, AP75 and, for Mask R-CNN, mask AP, AP50, AP75; baseline then YOLOR.
# COCO val2017, R-50, one run each, no noise reported.
REFERENCE_METRICS: dict[str, tuple[str, ...]] = {
    row: ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75")
    + (("coco/segm_mAP", "coco/segm_mAP_50", "coco/segm_mAP_75") if row == "mask-rcnn" else ())
    for row in REFERENCE_ROWS
}
REFERENCE_AP: dict[str, dict[str, tuple[float, ...]]] = {
    "faster-rcnn": {"baseline": (37.4, 58.1, 40.4), "yolor": (37.6, 58.5, 40.8)},
    "mask-rcnn": {"baseline": (38.2, 58.8, 41.4, 34.7, 55.7, 37.2), "yolor": (38.3, 59.1, 41.9, 34.8, 55.8, 37.3)},
    "fcos": {"baseline": (36.6, 56.0, 38.8), "yolor": (36.6, 56.1, 39.1)},
    "atss": {"baseline": (39.4, 57.6, 42.8), "yolor": (39.6, 57.8, 42.8)},
    "sparse-rcnn": {"baseline": (37.9, 56.0, 40.5), "yolor": (38.0, 56.3, 40.5)},
    "sparse-rcnn-3x": {"baseline": (45.0, 64.1, 48.9), "yolor": (45.0, 64.3, 49.1)},
}
# What a run to a resolution (--resolution) answers per row: box AP, and for Mask R-CNN mask AP too
# (the larger number of seeds of the two).
PRIMARY_METRICS: tuple[str, ...] = ("coco/bbox_mAP", "coco/segm_mAP")
METRIC_LABELS = {"coco/bbox_mAP": "box AP", "coco/bbox_mAP_50": "box AP50", "coco/bbox_mAP_75": "box AP75",
                 "coco/segm_mAP": "mask AP", "coco/segm_mAP_50": "mask AP50", "coco/segm_mAP_75": "mask AP75"}


def reference_figure(row: str, arm: str, metric: str) -> float | None:
    """The reference table's figure (in %) of one row's arm ('baseline' or 'yolor') for ``metric``."""
    metrics = REFERENCE_METRICS[row]
    return REFERENCE_AP[row][arm][metrics.index(metric)] if metric in metrics else None

