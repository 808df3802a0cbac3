"""The settings of one ``yolor-ray reproduce``, validated once on the driver."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yolor_ray.errors import require_int
from yolor_ray.reference import REFERENCE_ROWS
from yolor_ray.resolution import Resolution
from yolor_ray.train.spec import RUN_NAME, OptionError, RunSettings

ARMS = ("baseline", "yolor")


@dataclass(frozen=True)
class ReproduceSpec:
    """``rows`` x ``ARMS`` x ``seeds`` runs. ``train`` holds what every run shares (each run
    has its row's config and its own name; ``train.seed`` is the first seed);
    ``yolor_options``: ``--cfg-options`` of the YOLOR runs alone."""

    train: RunSettings
    rows: tuple[str, ...] = tuple(REFERENCE_ROWS)
    seeds: int = 3
    name: str | None = None
    yolor_options: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None
    trainer_runs: bool = False  # every run a TorchTrainer run, 1-worker ones too
    fixed_cluster: bool = False  # the cluster cannot grow: only as many runs at a time as fit now
    calibrate: int = 0  # --dry-run: measure this many iterations of each row's configs on one worker
    seconds_per_iter: dict[str, float] = field(default_factory=dict)  # --dry-run: given per row
    resolution: Resolution = field(default_factory=Resolution)  # seeds on demand: `seeds` is the pilot

    def __post_init__(self):
        require_int("--seeds", self.seeds, 2, OptionError, why=" (a paired interval needs two seeds)")
        require_int("--max-concurrent", self.max_concurrent, 1, OptionError, optional=True)
        require_int("--calibrate", self.calibrate, 0, OptionError)
        if not self.rows:
            raise OptionError(f"--rows needs at least one row; valid: {', '.join(REFERENCE_ROWS)}")
        for row in (*self.rows, *self.seconds_per_iter):
            if row not in REFERENCE_ROWS:
                raise OptionError(f"unknown reference row {row!r}; valid: {', '.join(REFERENCE_ROWS)}")
        if len(set(self.rows)) != len(self.rows):
            raise OptionError(f"--rows names a row twice: {' '.join(self.rows)}")
        for row, seconds in self.seconds_per_iter.items():
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
                raise OptionError(f"--seconds-per-iter {row}: a number of seconds > 0, got {seconds!r}")
        if self.calibrate and self.seconds_per_iter:
            raise OptionError("--calibrate measures seconds per iteration, --seconds-per-iter gives them: pass one")
        if self.name is not None and not RUN_NAME.match(self.name):
            raise OptionError(f"reproduction name must match {RUN_NAME.pattern}, got {self.name!r}")
        if self.train.warm_start is not None:
            raise OptionError("reproduce trains every baseline itself; --from is for sweeps and single runs")
        self.resolution.check(self.seeds)

    @property
    def seed_list(self) -> list[int]:
        return [self.train.seed + i for i in range(self.seeds)]
