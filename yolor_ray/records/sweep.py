"""What a sweep leaves: ``sweep.json`` before its first trial, ``leaderboard.json`` last."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yolor_ray.records.base import Record
from yolor_ray.records.paired import Confirmation


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
