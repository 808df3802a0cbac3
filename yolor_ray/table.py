"""The seed's AP table from stored results: ``yolor-ray table PATH``.

Every ``results.json`` under PATH (a folder or an ``s3://`` prefix; single runs and
sweeps' trials alike) becomes a row. Rows are grouped by detector and training
setting (dataset, scale, epochs), baseline first, so each YOLOR row sits under the
baseline it should be compared with. Trials that a sweep's scheduler stopped early
trained for fewer epochs than their group and are left out (and counted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from yolor_ray.results import RESULTS_FILE
from yolor_ray.storage import StorageSpec, open_storage

# mmdet's model types as the seed's table names them, in its row order.
MODEL_NAMES = {"FasterRCNN": "Faster R-CNN", "MaskRCNN": "Mask R-CNN", "SparseRCNN": "Sparse R-CNN",
               "FCOS": "FCOS", "ATSS": "ATSS"}
BOX_COLUMNS = (("AP", "coco/bbox_mAP"), ("AP50", "coco/bbox_mAP_50"), ("AP75", "coco/bbox_mAP_75"))
MASK_COLUMNS = (("mask AP", "coco/segm_mAP"), ("mask AP50", "coco/segm_mAP_50"), ("mask AP75", "coco/segm_mAP_75"))


@dataclass(frozen=True)
class Table:
    markdown: str
    rows: int
    left_out: int  # stopped trials


def model_name(record: dict) -> str:
    name = MODEL_NAMES.get(record["model"], record["model"])
    if "_3x" in record["config"] or "-3x" in record["config"]:
        name += " 3x"
    return name


def setting_of(record: dict) -> str:
    data = record["data_root"].rstrip("/").rsplit("/", 1)[-1] if record.get("data_root") else "config's data"
    return f"{data}, {'small, ' if record.get('small') else ''}{record['epochs']} ep"


def load_records(path: str, s3_endpoint: str | None = None) -> list[dict]:
    storage = open_storage(StorageSpec(path, s3_endpoint))
    storage.check()
    records = []
    for parts in storage.find(RESULTS_FILE):
        record = json.loads(storage.read_text(*parts, RESULTS_FILE))
        if isinstance(record, dict) and "metrics" in record and "model" in record:
            record["path"] = "/".join(parts) or "."  # where under PATH: 'sweep-x/runs/TRIAL'
            records.append(record)
    return records


def seed_table(records: list[dict]) -> Table:
    """Model | YOLOR | AP | AP50 | AP75 [| mask AP | mask AP50 | mask AP75] | setting | run (APs in %)."""
    kept = [r for r in records if r.get("status", "completed") == "completed"]
    with_mask = any("coco/segm_mAP" in r["metrics"] for r in kept)
    columns = BOX_COLUMNS + (MASK_COLUMNS if with_mask else ())
    order = list(MODEL_NAMES.values())

    def key(record):
        name = model_name(record)
        base = name.removesuffix(" 3x")
        position = order.index(base) if base in order else len(order)
        yolor = record.get("implicit") is not None
        return (position, name.endswith(" 3x"), name, setting_of(record), yolor,
                -record["metrics"].get("coco/bbox_mAP", 0.0), record["name"])

    header = ["Model", "YOLOR", *(label for label, _ in columns), "setting", "run"]
    lines = ["| " + " | ".join(header) + " |",
             "| :-- | :-: | " + " | ".join(":-:" for _ in columns) + " | :-- | :-- |"]
    for record in sorted(kept, key=key):
        cells = [model_name(record), "✓" if record.get("implicit") is not None else ""]
        for _, metric in columns:
            value = record["metrics"].get(metric)
            cells.append("-" if value is None or value < 0 else f"{100 * value:.1f}")
        cells += [setting_of(record), record.get("path", record["name"])]
        lines.append("| " + " | ".join(cells) + " |")
    left_out = len(records) - len(kept)
    if left_out:
        lines.append(f"\n{left_out} trial(s) stopped early by a sweep's scheduler are left out.")
    return Table("\n".join(lines), len(kept), left_out)
