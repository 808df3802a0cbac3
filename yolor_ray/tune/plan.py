"""A sweep's settings (``SweepSpec``) and the sweep once validated (``PreparedSweep``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yolor_ray.data.coco import CocoFolder
from yolor_ray.metrics import SCORE_METRIC
from yolor_ray.train.spec import RUN_NAME, OptionError, TrainSpec
from yolor_ray.tune import space as spacelib

SEARCHES = ("auto", "random", "grid", "optuna")


@dataclass(frozen=True)
class SweepSpec:
    """One ``yolor-ray tune`` sweep. ``train`` holds every trial's run settings (its
    ``name`` unused: trials are named by Tune); ``space`` is the raw search space."""

    train: TrainSpec
    space: dict[str, Any]
    name: str | None = None
    trials: int = 8
    search: str = "auto"
    metric: str = SCORE_METRIC
    mode: str = "max"
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int | None = None
    early_stopping: bool = True  # ASHA; False runs every trial to its last epoch (an exhaustive sweep)
    fixed_cluster: bool = False  # the cluster cannot grow: run only as many trials as fit now (docs/tune.md)
    trainer_trials: bool = False  # every trial a TorchTrainer run, 1-worker ones too (else those train in-process)
    confirm: int = 0  # the top K variants and the baseline trained again with `seeds` seeds each (tune/confirm.py)
    seeds: int = 2

    def __post_init__(self):
        for key, low in (("trials", 1), ("grace_period", 1), ("reduction_factor", 2)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise OptionError(f"SweepSpec({key}) must be an int >= {low}, got {value!r}")
        if not isinstance(self.confirm, int) or isinstance(self.confirm, bool) or self.confirm < 0:
            raise OptionError(f"--confirm must be an int >= 0, got {self.confirm!r}")
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 2:
            raise OptionError(f"--seeds must be an int >= 2 (a paired interval needs two seeds), got {self.seeds!r}")
        if self.max_concurrent is not None and (not isinstance(self.max_concurrent, int) or self.max_concurrent < 1):
            raise OptionError(f"SweepSpec(max_concurrent) must be None or an int >= 1, got {self.max_concurrent!r}")
        if self.search not in SEARCHES:
            raise OptionError(f"unknown search {self.search!r}; valid: {', '.join(SEARCHES)}")
        if self.mode not in ("max", "min"):
            raise OptionError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.name is not None and not RUN_NAME.match(self.name):
            raise OptionError(f"sweep name must match {RUN_NAME.pattern}, got {self.name!r}")


@dataclass(frozen=True)
class PreparedSweep:
    """A validated sweep; nothing written yet."""

    spec: SweepSpec
    space: spacelib.SearchSpace
    trial_spec: TrainSpec  # every trial's settings, paths absolute, storage = the sweep's runs folder
    base_implicit: dict
    epochs: int
    search: str
    name: str
    storage: object  # LocalStorage | S3Storage of the sweep's parent
    fingerprint: str
    resuming: bool
    data: CocoFolder | None = None  # --data, inspected once for the whole sweep
    finished: bool = False  # complete already: only its confirmation to run (--confirm)
    # The settings of the space's lists of choices its trials take, one per trial, distinct
    # (SearchSpace.pick): random and grid search; empty for Optuna, which picks its own.
    points: tuple[dict, ...] = ()

    @property
    def trials(self) -> int:
        """How many trials the sweep runs."""
        return len(self.points) if self.points else self.spec.trials

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def in_process(self) -> bool:
        """Trials train in their Tune actors (1 worker each), not in TorchTrainer runs."""
        return self.trial_spec.num_workers == 1 and not self.spec.trainer_trials
