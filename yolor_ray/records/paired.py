"""The records of runs compared in pairs (``yolor_ray.paired``): each run's outcome, an arm's
values, a paired difference with its interval, a confirmation's variants."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from yolor_ray.records.base import Part, Record


@dataclass
class RunOutcome(Part):
    """One run of a paired comparison (a confirmation's, a reproduction's) after a pass:
    'completed' (its results.json), 'failed' (why, in one line) or 'not run'."""

    arm: str  # the arm's label: 'baseline', a variant's label, 'atss-yolor' ...
    seed: int
    run: str  # where its folder is
    status: str
    error: str | None = None
    metrics: dict = field(default_factory=dict)
    train_time_s: float | None = None
    device_hours: float | None = None  # GPU-hours of a GPU run, CPU-hours of a CPU run
    restarts: int | None = None


@dataclass
class ArmValues(Part):
    """One arm's values of a metric, per seed (None: no run, or not reported), and their mean ± sd."""

    arm: str
    values: list[float | None]
    mean: float | None = None
    sd: float | None = None

    @property
    def present(self) -> int:
        return sum(v is not None for v in self.values)


@dataclass
class PairedMetric(Part):
    """A variant arm against a baseline arm on one metric: both arms' values and the paired
    difference (variant - baseline) over the seeds with both, with its 95% interval
    (``yolor_ray.noise``); without an interval below two such pairs."""

    metric: str
    variant: ArmValues
    baseline: ArmValues
    pairs: int = 0
    diff_mean: float | None = None
    diff_sd: float | None = None
    low: float | None = None
    high: float | None = None
    within_noise: bool | None = None
    seeds: list[int] = field(default_factory=list)  # of the values ([]: the record's seeds)
    # Run to a resolution: Stein's interval, whose sd and degrees of freedom are the first
    # `pilot` seeds' (pilot_sd), over every pair (None: the usual paired t over the pairs).
    pilot: int | None = None
    pilot_sd: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None

    @property
    def half_width(self) -> float | None:
        return (self.high - self.low) / 2 if self.has_interval else None


# What a comparison run to a resolution reached (SeedsReached.status).
RESOLVED, CAPPED, INCOMPLETE, PILOT_INCOMPLETE = "resolved", "capped", "incomplete", "pilot incomplete"


@dataclass
class SeedsReached(Part):
    """How far a comparison run to a resolution got (Stein's two stages, ``yolor_ray.resolution``).
    Its pilot fixed N, the seeds it needs in all; ``status``: RESOLVED (all N paired: each primary
    metric's half-width <= ``target``), CAPPED (``--max-seeds`` stopped short of N: the interval
    keeps its coverage, wider than the target), INCOMPLETE (planned runs without results: the
    same command trains them), PILOT_INCOMPLETE (N is known once the pilot has every pair).
    Values in the comparison's unit: AP in % for a reproduction, the metric's own for a confirmation."""

    status: str
    target: float  # H
    pilot: int  # n0, its seeds
    primary: list[str] = field(default_factory=list)  # the metrics whose largest N it runs
    pilot_sd: float | None = None  # s0 of the primary metric that set N
    needed: int | None = None  # N
    planned: int | None = None  # N, at most --max-seeds
    run: int = 0  # planned seeds with both arms' values
    half_width: float | None = None  # the widest of the primary metrics' intervals
    rest_device_hours: float | None = None  # capped: the runs from `planned` to N, at its mean per run


class PairedRuns:
    """What a confirmation and a reproduction both hold: their runs' outcomes (``runs``)."""

    runs: list[RunOutcome]

    @property
    def missing(self) -> list[RunOutcome]:  # the runs without results (failed, or not run)
        return [run for run in self.runs if run.status != "completed"]


@dataclass
class ConfirmedVariant(Part):
    label: str
    variant: dict
    paired: PairedMetric  # on the sweep's metric, against the baseline
    reached: SeedsReached | None = None  # run to a resolution (--resolution)


@dataclass
class Confirmation(Record, PairedRuns):
    """``confirmation.json``: the top variants and the baseline at S seeds each, and each
    variant's paired difference to the baseline with its 95% interval (``yolor_ray.noise``)."""

    SCHEMA: ClassVar[int] = 2
    OLDEST_SCHEMA: ClassVar[int] = 2  # schema 1 kept dicts (baseline, variants)

    metric: str
    seeds: list[int]
    method: str
    baseline: ArmValues
    variants: list[ConfirmedVariant] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    resolution: float | None = None  # --resolution H (AP points); `seeds` are then the pilot's
