"""What a reproduction (``yolor-ray reproduce``) leaves: ``reproduce_plan.json`` before its
first run, ``reproduce.json`` after each pass."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from yolor_ray.records.base import Part, Record
from yolor_ray.records.paired import PairedMetric, PairedRuns, RunOutcome, SeedsReached


@dataclass
class ReproduceManifest(Record):
    """``reproduce_plan.json``, written before the first run: what a reproduction's name
    belongs to. Rows and seeds may grow on a later pass; the settings may not."""

    rows: list[str]
    seeds: list[int]
    settings: dict  # what every run shares (epochs, scale, workers, data ...), compared on each pass


@dataclass
class ReproducedMetric(Part):
    """One metric of a reproduced row: YOLOR (the variant) against the baseline, in %, and the
    reference table's own figures beside them."""

    label: str  # 'box AP', 'mask AP50' ...
    paired: PairedMetric
    reference_baseline: float | None = None
    reference_yolor: float | None = None
    reference_delta: float | None = None  # the difference the reference table claims


@dataclass
class RowHours(Part):
    """What a row's completed runs cost in device-hours: per arm in all, and per run on average."""

    baseline: float = 0.0
    yolor: float = 0.0
    per_run_baseline: float | None = None
    per_run_yolor: float | None = None


@dataclass
class ReproducedRow(Part):
    row: str
    model: str
    baseline_arm: str  # the labels of its arms' runs: 'atss-baseline', 'atss-yolor'
    yolor_arm: str
    metrics: list[ReproducedMetric] = field(default_factory=list)
    failed: list[RunOutcome] = field(default_factory=list)  # its runs without results
    completed: int = 0
    planned: int = 0
    device_hours: RowHours = field(default_factory=RowHours)
    reached: SeedsReached | None = None  # run to a resolution (--resolution)


@dataclass
class Reproduction(Record, PairedRuns):
    """``reproduce.json``: every run of the reference table's rows x baseline/YOLOR x seeds, and per row
    and metric the paired YOLOR - baseline difference with its 95% interval (``yolor_ray.noise``)."""

    SCHEMA: ClassVar[int] = 2
    OLDEST_SCHEMA: ClassVar[int] = 2  # schema 1 kept dicts (rows, runs)

    name: str
    location: str
    method: str
    device: str  # 'GPU' or 'CPU': what device_hours count
    seeds: list[int]
    settings: dict
    rows: list[ReproducedRow] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    resolution: float | None = None  # --resolution H (AP points); `seeds` are then the pilot's
