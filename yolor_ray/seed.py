"""The seed's table rows (shared/seed, README's seed results): short names and config files.

Each row is a baseline config under ``configs/baseline`` and its YOLOR variant under
``configs/yolor`` (the same name with ``yolor_`` in front). Light: no torch, no mmdet.
"""
from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# short name -> the baseline config's file name, in the seed table's order
SEED_ROWS: dict[str, str] = {
    "faster-rcnn": "faster-rcnn_r50_fpn_1x_coco.py",
    "mask-rcnn": "mask-rcnn_r50_fpn_1x_coco.py",
    "fcos": "fcos_r50-caffe_fpn_gn-head_1x_coco.py",
    "atss": "atss_r50_fpn_1x_coco.py",
    "sparse-rcnn": "sparse-rcnn_r50_fpn_1x_coco.py",
    "sparse-rcnn-3x": "sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py",
}


def baseline_config(row: str) -> Path:
    return CONFIGS / "baseline" / SEED_ROWS[row]


def yolor_config(row: str) -> Path:
    return CONFIGS / "yolor" / f"yolor_{SEED_ROWS[row]}"
