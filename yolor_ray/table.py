"""The reference table's AP table from stored results: ``yolor-ray table PATH``.

A reproduction's runs (``yolor-ray reproduce``) are shown as its own table, with the noise of
its seeds (:func:`format_reproduction`). Every other ``results.json`` under PATH (a folder or
an ``s3://`` prefix; single runs and sweeps' trials alike) becomes a row. Rows are grouped by
detector and training setting (dataset, scale, epochs), baseline first, so each YOLOR row sits
under the baseline it should be compared with. Trials that a sweep's scheduler stopped early
trained for fewer epochs than their group and are left out (and counted).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from yolor_ray import paths
from yolor_ray.layout import CONFIRMATION_FILE, REPRODUCTION_FILE, RESULTS_FILE
from yolor_ray.records import (
    CAPPED,
    PILOT_INCOMPLETE,
    RESOLVED,
    ArmValues,
    Confirmation,
    PairedMetric,
    Record,
    RecordError,
    Reproduction,
    RunOutcome,
    RunResults,
    SeedsReached,
)
from yolor_ray.storage import Storage, StorageSpec, open_storage
from yolor_ray.units import device_time_text

log = logging.getLogger("yolor_ray")
R = TypeVar("R", bound=Record)

# mmdet's model types as the reference table names them, in its row order.
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
    found = _read_all(storage, RESULTS_FILE, RunResults, "a run's results")
    return [StoredRun(where, record) for where, record in found]


def _read_all(storage: Storage, file_name: str, record_type: type[R], what: str) -> list[tuple[str, R]]:
    """Every ``file_name`` under the storage's root, with where it is ('.' for the root); one
    that is not ``record_type`` (cut short, another tool's) is skipped with a warning, so it
    does not hide the others."""
    found = []
    for parts in storage.find(file_name):
        where = "/".join(parts) or "."
        try:
            found.append((where, record_type.from_json(storage.read_text(*parts, file_name))))
        except RecordError as err:
            log.warning("skipped %s/%s: not %s: %s", where, file_name, what, err)
    return found


def reference_table(runs: list[StoredRun]) -> Table:
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


@dataclass(frozen=True)
class PairedLine:
    """One line of the paired table: its lead cells, a comparison on one metric, its trail
    cells and, for a comparison run to a resolution, what it reached."""

    lead: list[str]
    paired: PairedMetric
    trail: list[str] = ()
    reached: SeedsReached | None = None


def format_paired(lines: list[PairedLine], seeds: list[int], *, lead: list[str], trail: list[str] = (),
                  arms: tuple[str, str] = ("baseline", "variant"), digits: int = 4,
                  device: str = "device") -> list[str]:
    """The one table of paired comparisons (a confirmation's, a reproduction's), a row per
    line: | LEAD | baseline | variant | variant − baseline [95% interval] | verdict | [seeds
    to a resolution |] TRAIL | per seed: baseline → variant |; ``arms``: the two columns'
    names, ``digits``: the values' decimals, ``device``: what a capped comparison's rest would
    run on (its cost: ``units.device_time_text``)."""
    resolved = any(line.reached is not None for line in lines)
    return [*paired_header(lead, trail, arms, resolved), *(paired_row(line, seeds, digits, resolved, device)
                                                          for line in lines)]


def paired_header(lead: list[str], trail: list[str] = (), arms: tuple[str, str] = ("baseline", "variant"),
                  resolved: bool = False) -> list[str]:
    """The header; ``resolved``: with the column of what each comparison run to a resolution reached."""
    baseline, variant = arms
    reached = ["seeds: pilot, run, ± half-width"] if resolved else []
    header = [*lead, baseline, variant, f"{variant} − {baseline} [95% interval]", "", *reached, *trail,
              f"per seed: {baseline} → {variant}"]
    return ["| " + " | ".join(header) + " |",
            "| " + " | ".join([":--"] * len(lead) + ["--:"] * 3 + [":--"] * (1 + len(reached)) + ["--:"] * len(trail)
                              + [":--"]) + " |"]


def paired_row(line: PairedLine, seeds: list[int], digits: int, resolved: bool = False,
               device: str = "device") -> str:
    paired = line.paired
    if paired.has_interval:
        interval = f"{paired.diff_mean:+.{digits}f} [{paired.low:+.{digits}f}, {paired.high:+.{digits}f}]"
        verdict = "within noise" if paired.within_noise else "**beyond noise**"
    else:
        interval, verdict = f"needs 2 seeds with both arms ({paired.pairs} here)", ""
    reached = [reached_cell(line.reached, paired, digits, device) if line.reached else ""] if resolved else []
    cells = [*line.lead, arm_cell(paired.baseline, digits), arm_cell(paired.variant, digits), interval, verdict,
             *reached, *line.trail, _per_seed(paired, paired.seeds or seeds, max(digits - 1, 1))]
    return "| " + " | ".join(cells) + " |"


def reached_cell(reached: SeedsReached, paired: PairedMetric, digits: int, device: str) -> str:
    """The pilot, the seeds run, the half-width; on a primary metric's line (the one that set N)
    also "resolved to ±H", or "capped: N seeds needed, M run; the rest would cost X DEVICE-hours"."""
    if reached.status == PILOT_INCOMPLETE:
        return (f"pilot incomplete ({paired.pairs} of {reached.pilot} seeds with both arms): the same command "
                "trains the rest, then the seeds it needs")
    half = "-" if paired.half_width is None else f"±{paired.half_width:.{digits}f}"
    cell = f"pilot {reached.pilot}, {paired.pairs} run, {half}"
    if paired.metric not in reached.primary:
        return cell
    if reached.status == RESOLVED:
        return f"{cell}: resolved to ±{reached.target:g}"
    if reached.status == CAPPED:
        rest = device_time_text(reached.rest_device_hours, device)
        return (f"{cell}: capped: {reached.needed} seeds needed, {reached.run} run; the rest would cost "
                f"{rest} (a higher --max-seeds runs them)")
    return (f"{cell}: incomplete: {reached.run} of {reached.planned} seeds with both arms; the same command trains "
            "the rest")


def arm_cell(arm: ArmValues, digits: int) -> str:
    """'mean ± sd' over the seeds with a value ('mean' alone for one; '-' for none)."""
    if arm.mean is None:
        return "-"
    return f"{arm.mean:.{digits}f} ± {arm.sd:.{digits}f}" if arm.present > 1 else f"{arm.mean:.{digits}f}"


def _per_seed(paired: PairedMetric, seeds: list[int], digits: int) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.{digits}f}"
    return "; ".join(f"{seed}: {cell(base)} → {cell(ours)}"
                     for seed, base, ours in zip(seeds, paired.baseline.values, paired.variant.values))


def missing_runs(runs: list[RunOutcome], rerun: str) -> list[str]:
    """Markdown lines: the runs without results and why, and how to train them again."""
    if not runs:
        return []
    return ["", "## Runs without results", "", *(f"- {run.arm}, seed {run.seed}: {run.error}" for run in runs),
            "", f"{rerun} trains them again (the others are reused)."]


def format_confirmation(c: Confirmation, title: str = "Confirmation") -> list[str]:
    """Markdown lines: one row per variant against the baseline; then the runs without results."""
    lines = [PairedLine([v.label], v.paired, reached=v.reached) for v in c.variants]
    return [f"## {title}: {_seeds_title(c.seeds, c.resolution)}, `{c.metric}`", "",
            f"Difference to the baseline with its 95% interval: {c.method}. \"within noise\": the interval holds 0. "
            f"The baseline: {arm_cell(c.baseline, 4)}.", "",
            *format_paired(lines, c.seeds, lead=["variant"]),
            *missing_runs(c.missing, "The same command with --confirm")]


def load_confirmations(path: str, s3_endpoint: str | None = None) -> list[tuple[str, Confirmation]]:
    """Every sweep's confirmation.json under PATH, with where it is."""
    return _read_all(open_storage(StorageSpec(path, s3_endpoint)), CONFIRMATION_FILE, Confirmation,
                     "a sweep's confirmation")


def _seeds_title(seeds: list[int], resolution: float | None) -> str:
    """'3 seeds (0, 1, 2)'; run to a resolution: 'a pilot of 3 seeds (0, 1, 2), run to ±0.1 AP'."""
    listed = f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
    return listed if resolution is None else f"a pilot of {listed}, run to ±{resolution:g} AP"


def _figure(value: float | None, signed: bool = False) -> str:
    return "-" if value is None else f"{value:+.1f}" if signed else f"{value:.1f}"


def format_reproduction(rep: Reproduction) -> str:
    """``reproduce.md``: per row and metric both arms' mean ± sd over the seeds, the paired
    difference with its 95% interval and verdict, the reference table's figures; then the cost; then what failed."""
    settings = rep.settings
    data = settings.get("data_root") or "the configs' dataset"
    scale = f"--small {settings.get('image_size')}px, " if settings.get("small") else ""
    epochs = f"{settings['epochs']} epochs" if settings.get("epochs") else "each row's own schedule"
    device = rep.device
    resolved = rep.resolution is not None
    lines = [f"# Reproduction `{rep.name}`: the reference table's rows, {_seeds_title(rep.seeds, rep.resolution)}",
             "",
             f"{data}, {scale}{epochs}, {settings.get('num_workers')} {rep.device} worker(s) per run"
             + (f", batch {settings['batch_size']} per worker" if settings.get("batch_size") else "")
             + (f", AMP {settings['amp']}" if settings.get("amp") else "") + ". APs in %.",
             "",
             f"YOLOR − baseline with its 95% interval: {rep.method}; \"within noise\": the interval holds 0, "
             "the seeds cannot tell YOLOR from the baseline. A seed's baseline and YOLOR runs see the same data "
             "in the same order. The reference table's columns: its single runs (COCO val2017, 1x or 3x schedule) and "
             "the difference it claims.",
             "",
             *paired_header(["Model", "metric"], ["reference: baseline", "reference: YOLOR", "reference: Δ"],
                            arms=("baseline", "YOLOR"), resolved=resolved)]
    for row in rep.rows:
        lines += [paired_row(PairedLine([row.model, m.label], m.paired,
                                        [_figure(m.reference_baseline), _figure(m.reference_yolor),
                                         _figure(m.reference_delta, signed=True)], row.reached),
                             rep.seeds, 2, resolved, device)
                  for m in row.metrics]
        if not row.metrics:
            lines.append(f"| {row.model} | | no run finished |" + " |" * (7 + resolved))
    lines += ["", f"## Cost ({device} time: training and validation time x the {device}s each run held; start-up "
              "not counted)", "",
              f"| Model | runs complete | {device} time per run, baseline | per run, YOLOR | row total |",
              "| :-- | --: | --: | --: | --: |"]
    total = 0.0
    for row in rep.rows:
        hours = row.device_hours
        row_total = hours.baseline + hours.yolor
        total += row_total
        per_run = [device_time_text(h, device) for h in (hours.per_run_baseline, hours.per_run_yolor)]
        lines.append(f"| {row.model} | {row.completed} of {row.planned} | {per_run[0]} | {per_run[1]} | "
                     f"{device_time_text(row_total, device)} |")
    lines.append(f"| total | {sum(r.completed for r in rep.rows)} of {sum(r.planned for r in rep.rows)} | | | "
                 f"{device_time_text(total, device)} |")
    lines += ["", "## Runs", "", f"| run | status | box AP | {device} time | restarts | where |",
              "| :-- | :-- | --: | --: | --: | :-- |"]
    for run in rep.runs:
        ap = run.metrics.get("coco/bbox_mAP")
        lines.append(f"| {run.arm} seed {run.seed} | {run.status} | {'-' if ap is None else f'{100 * ap:.2f}'} | "
                     f"{device_time_text(run.device_hours, device)} | "
                     f"{'-' if run.restarts is None else run.restarts} | {run.run} |")
    failed = [(row, run) for row in rep.rows for run in row.failed]
    if failed:
        lines += ["", "## Runs without results", ""]
        lines += [f"- {row.model}, {'YOLOR' if run.arm == row.yolor_arm else 'baseline'}, seed {run.seed}: "
                  f"{run.error}" for row, run in failed]
        lines += ["", f"The same command with `--name {rep.name}` trains them again (the others are reused)."]
    return "\n".join(lines) + "\n"


def outside_reproductions(runs: list[StoredRun], reproductions: list[str]) -> list[StoredRun]:
    """The runs not of a reproduction at one of ``reproductions`` (its table shows them)."""
    prefixes = tuple("runs/" if where == "." else f"{where}/runs/" for where in reproductions)
    return [run for run in runs if not run.path.startswith(prefixes)] if prefixes else runs


def load_reproductions(path: str, s3_endpoint: str | None = None) -> list[tuple[str, Reproduction]]:
    """Every reproduction's reproduce.json under PATH, with where it is."""
    return _read_all(open_storage(StorageSpec(path, s3_endpoint)), REPRODUCTION_FILE, Reproduction,
                     "a reproduction's results")
