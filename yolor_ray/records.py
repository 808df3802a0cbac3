"""The JSON records a run and a sweep leave, as typed dataclasses.

Every record is written with a ``schema`` number and read back through ``from_json``,
which also reads the records written before schemas existed (schema 0: the same keys,
some of them absent). Readers use the fields, never string keys of the raw JSON.
File names are in :mod:`yolor_ray.layout`.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")
P = TypeVar("P", bound="Part")
# In each epoch's record of a run's history: seconds from the epoch's start to its report
# (training and its validation). Summed, the time a run trained, across restarts and resumes.
EPOCH_TIME = "epoch_time_s"


class RecordError(ValueError):
    """A record's text is not that record: not JSON, not an object, or without a required
    field. One type, so that readers catch this alone and say which file it was."""


class Part:
    """A dataclass read from a JSON object: its required fields present, unknown keys (of
    newer writers) ignored, nested parts (fields typed as a ``Part``, a list of them, or
    either or None) rebuilt from their dicts."""

    @classmethod
    def from_dict(cls: type[P], raw: dict[str, Any]) -> P:
        if not isinstance(raw, dict):
            raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in raw
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise RecordError(f"without {', '.join(missing)}")
        cls._check_schema(raw)
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _rebuilt(hints[f.name], raw[f.name]) for f in fields if f.name in raw})

    @classmethod
    def _check_schema(cls, raw: dict[str, Any]) -> None:
        """A record's own check of the schema it was written with (a part has none)."""


def _rebuilt(hint, value):
    """``value`` as a field typed ``hint`` holds it: a nested part (or a list of them) from its dict(s)."""
    part = _part_of(hint)
    if part is None or value is None:
        return value
    if typing.get_origin(hint) is list or any(typing.get_origin(arg) is list for arg in typing.get_args(hint)):
        if not isinstance(value, list):
            raise RecordError(f"expected a list of {part.__name__}, got {type(value).__name__}")
        return [v if isinstance(v, part) else part.from_dict(v) for v in value]
    return value if isinstance(value, part) else part.from_dict(value)


def _part_of(hint) -> type[Part] | None:
    """The Part a field typed ``hint`` holds (``X``, ``list[X]``, ``X | None``), else None."""
    if isinstance(hint, type) and issubclass(hint, Part):
        return hint
    return next((part for part in map(_part_of, typing.get_args(hint)) if part is not None), None)


class Record(Part):
    """A file's record: to_json / from_json for the dataclasses below. ``OLDEST_SCHEMA``: the
    oldest schema this version reads (an older file is a RecordError that says so)."""

    SCHEMA: ClassVar[int] = 1
    OLDEST_SCHEMA: ClassVar[int] = 0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def _check_schema(cls, raw: dict[str, Any]) -> None:
        schema = raw.get("schema", 0)
        if isinstance(schema, int) and schema < cls.OLDEST_SCHEMA:
            raise RecordError(f"written by an earlier yolor-ray (schema {schema}; this one reads schema "
                              f"{cls.OLDEST_SCHEMA} and later)")

    @classmethod
    def from_stored(cls: type[R], text: str | None, file_name: str) -> R:
        """``from_json`` of a file read from storage (``None``: it is not there)."""
        if text is None:
            raise RecordError(f"no {file_name}")
        return cls.from_json(text)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        try:
            raw = json.loads(text)
        except ValueError as err:  # cut short, or not ours
            raise RecordError(f"not JSON ({err})") from None
        return cls.from_dict(raw)


@dataclass
class RunState(Record):
    """``run_state.json`` in each checkpoint: the run so far, so a resumed run carries it on.

    ``history``: one dict per reported epoch (``epoch``, ``iter``, ``train/...`` losses and
    the validation metrics); ``nodes``: each rank's node (``rank``, ``node_id``, ``ip``) as
    the latest worker group observed it.
    """

    history: list[dict] = field(default_factory=list)
    restarts: int = 0
    nodes: list[dict] = field(default_factory=list)
    before_training: dict = field(default_factory=dict)  # a warm start's validation before its first epoch
    checkpoint_bytes: int | None = None  # the size of checkpoint.pth beside it: a whole upload has it

    @property
    def epochs_run(self) -> int:
        return self.history[-1]["epoch"] if self.history else 0

    @property
    def final_metrics(self) -> dict:
        final = self.history[-1] if self.history else {}
        return {k: v for k, v in final.items() if k not in ("epoch", "iter", EPOCH_TIME)}


@dataclass
class RunManifest(Record):
    """``run.json``, written before training: what the run name belongs to (config and
    scale, compared on resume) and what is known of the run before it trains."""

    config: str
    fingerprint: str
    num_workers: int | None = None  # None: written before the world size was recorded
    use_gpu: bool | None = None
    model: str | None = None  # the detector's type (the base detector of a YOLOR model)
    implicit: dict | None = None  # the implicit settings; None: a baseline
    data_root: str | None = None
    classes: list[str] = field(default_factory=list)
    small: bool = False
    epochs: int | None = None  # planned
    num_params: int | None = None
    warm_start: str | None = None  # --from: the baseline it fine-tunes


@dataclass
class RunResults(Record):
    """``results.json``: what ran, on what, how it did. No credentials: storage is named by URI."""

    name: str
    location: str
    config: str
    model: str
    metrics: dict
    history: list[dict]
    status: str = "completed"  # or 'stopped' early by a sweep's scheduler
    implicit: dict | None = None
    data_root: str | None = None
    classes: list[str] = field(default_factory=list)
    small: bool = False
    epochs: int | None = None
    restarts: int = 0
    num_params: int | None = None
    world_size: int | None = None  # as the workers observed it (len(nodes)), else as asked
    nodes: list[dict] = field(default_factory=list)
    use_gpu: bool = False
    wall_time_s: float = 0.0  # of the last driver's fit (since the last resume)
    checkpoint: str | None = None
    artifacts: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    per_class_ap: dict[str, float | None] = field(default_factory=dict)  # class -> final AP (None: no value)
    warm_start: str | None = None  # --from: the baseline it fine-tuned
    before_training: dict = field(default_factory=dict)  # its metrics before the first epoch (a warm start)

    @property
    def is_yolor(self) -> bool:
        return self.implicit is not None

    @property
    def train_time_s(self) -> float:
        """Seconds it trained and validated, summed over its epochs (restarts and resumes
        included; start-up and an interrupted epoch not); its last fit's wall time for a run
        written before epochs were timed."""
        timed = [h[EPOCH_TIME] for h in self.history if EPOCH_TIME in h]
        return float(sum(timed)) if len(timed) == len(self.history) and timed else self.wall_time_s


@dataclass
class SweepManifest(Record):
    """``sweep.json``, written before the first trial: what the sweep name belongs to."""

    config: str
    fingerprint: str
    space: dict = field(default_factory=dict)
    search: str | None = None
    metric: str | None = None
    mode: str | None = None
    early_stopping: bool = True


@dataclass
class LeaderboardEntry(Record):
    """One trial in ``leaderboard.json``: its variant, how far it got, its metrics."""

    trial: str | None
    variant: dict
    label: str
    status: str = "error"  # 'completed', 'stopped' (by ASHA) or 'error'
    run: str | None = None  # where the trial's run is
    epochs_run: int = 0
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    restarts: int = 0
    wall_time_s: float | None = None
    error: str | None = None
    rank: int | None = None
    best: float | None = None  # the metric's best epoch
    before_training: dict = field(default_factory=dict)  # a warm start's metrics before its first epoch


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

    @property
    def has_interval(self) -> bool:
        return self.low is not None


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


@dataclass
class Leaderboard(Record):
    """``leaderboard.json``, written last: a sweep that has it is complete."""

    sweep: str
    location: str
    config: str
    metric: str
    mode: str
    search: str
    epochs: int
    space: dict = field(default_factory=dict)
    early_stopping: bool = True
    trials: list[LeaderboardEntry] = field(default_factory=list)
    best_config: str | None = None
    warm_start: str | None = None  # --from: the baseline every trial fine-tuned
    confirmation: Confirmation | None = None  # --confirm

    def to_dict(self) -> dict[str, Any]:
        return dict(super().to_dict(), confirmation=self.confirmation.to_dict() if self.confirmation else None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Leaderboard:
        confirmation = raw.get("confirmation") if isinstance(raw, dict) else None
        if isinstance(confirmation, dict) and confirmation.get("schema", 0) < Confirmation.OLDEST_SCHEMA:
            raw = dict(raw, confirmation=None)  # an earlier version's, untyped: its leaderboard.md shows it
        return super().from_dict(raw)


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
