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
from pathlib import Path

from yolor_ray import paths
from yolor_ray.layout import CONFIRMATION_FILE, RESULTS_FILE
from yolor_ray.records import Confirmation, RunResults
from yolor_ray.storage import StorageSpec, open_storage

# mmdet's model types as the seed's table names them, in its row order.
MODEL_NAMES = {"FasterRCNN": "Faster R-CNN", "MaskRCNN": "Mask R-CNN", "SparseRCNN": "Sparse R-CNN",
               "FCOS": "FCOS", "ATSS": "ATSS"}
BOX_COLUMNS = (("AP", "coco/bbox_mAP"), ("AP50", "coco/bbox_mAP_50"), ("AP75", "coco/bbox_mAP_75"))
MASK_COLUMNS = (("mask AP", "coco/segm_mAP"), ("mask AP50", "coco/segm_mAP_50"), ("mask AP75", "coco/segm_mAP_75"))


@dataclass(frozen=True)
class StoredRun:
    """One results.json found under PATH, and where: 'sweep-x/runs/TRIAL'."""

    path: str
    record: RunResults


@dataclass(frozen=True)
class Table:
    markdown: str
    left_out: int  # stopped trials


def model_name(record: RunResults) -> str:
    name = MODEL_NAMES.get(record.model, record.model)
    if "_3x" in record.config or "-3x" in record.config:
        name += " 3x"
    return name


def setting_of(record: RunResults) -> str:
    data = record.data_root.rstrip("/").rsplit("/", 1)[-1] if record.data_root else "config's data"
    return f"{data}, {'small, ' if record.small else ''}{record.epochs} ep"


def load_records(path: str, s3_endpoint: str | None = None) -> list[StoredRun]:
    spec = StorageSpec(path, s3_endpoint)
    storage = open_storage(spec)
    if spec.is_s3:
        storage.check()
    else:  # read, not written: a folder that is there (a read-only one will do)
        paths.input_folder(Path(path).expanduser(), "table PATH",
                           hint="expected a results folder, a run or a sweep")
    found = []
    for parts in storage.find(RESULTS_FILE):
        raw = json.loads(storage.read_text(*parts, RESULTS_FILE))
        if isinstance(raw, dict) and "metrics" in raw and "model" in raw:  # not some other tool's results.json
            found.append(StoredRun("/".join(parts) or ".", RunResults.from_dict(raw)))
    return found


def seed_table(runs: list[StoredRun]) -> Table:
    """Model | YOLOR | AP | AP50 | AP75 [| mask AP | mask AP50 | mask AP75] | setting | run (APs in %)."""
    kept = [r for r in runs if r.record.status == "completed"]
    with_mask = any("coco/segm_mAP" in r.record.metrics for r in kept)
    columns = BOX_COLUMNS + (MASK_COLUMNS if with_mask else ())
    order = list(MODEL_NAMES.values())

    def key(run: StoredRun):
        record = run.record
        name = model_name(record)
        base = name.removesuffix(" 3x")
        position = order.index(base) if base in order else len(order)
        return (position, name.endswith(" 3x"), name, setting_of(record), record.is_yolor,
                -record.metrics.get("coco/bbox_mAP", 0.0), record.name)

    header = ["Model", "YOLOR", *(label for label, _ in columns), "setting", "run"]
    lines = ["| " + " | ".join(header) + " |",
             "| :-- | :-: | " + " | ".join(":-:" for _ in columns) + " | :-- | :-- |"]
    for run in sorted(kept, key=key):
        record = run.record
        cells = [model_name(record), "✓" if record.is_yolor else ""]
        for _, metric in columns:
            value = record.metrics.get(metric)
            cells.append("-" if value is None or value < 0 else f"{100 * value:.1f}")
        cells += [setting_of(record), run.path]
        lines.append("| " + " | ".join(cells) + " |")
    left_out = len(runs) - len(kept)
    if left_out:
        lines.append(f"\n{left_out} trial(s) stopped early by a sweep's scheduler are left out.")
    return Table("\n".join(lines), left_out)


def format_confirmation(c: Confirmation, title: str = "Confirmation") -> list[str]:
    """Markdown lines: one row per variant, the baseline first."""
    lines = [f"## {title}: {len(c.seeds)} seeds ({', '.join(map(str, c.seeds))}), `{c.metric}`", "",
             f"Difference to the baseline with its 95% interval: {c.method}. \"within noise\": the interval holds 0.",
             "", "| variant | mean ± sd | difference to baseline [95% interval] | |", "| :-- | --: | --: | :-- |",
             f"| baseline | {c.baseline['mean']:.4f} ± {c.baseline['sd']:.4f} | | |"]
    for v in c.variants:
        verdict = "within noise" if v["within_noise"] else "beyond noise"
        lines.append(f"| {v['label']} | {v['mean']:.4f} ± {v['sd']:.4f} | {v['diff_mean']:+.4f} "
                     f"[{v['low']:+.4f}, {v['high']:+.4f}] | {verdict} |")
    return lines


def load_confirmations(path: str, s3_endpoint: str | None = None) -> list[tuple[str, Confirmation]]:
    """Every sweep's confirmation.json under PATH, with where it is."""
    storage = open_storage(StorageSpec(path, s3_endpoint))
    return [("/".join(parts) or ".", Confirmation.from_json(storage.read_text(*parts, CONFIRMATION_FILE)))
            for parts in storage.find(CONFIRMATION_FILE)]
