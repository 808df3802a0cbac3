"""The settings of one ``yolor-ray tune`` sweep, validated once on the driver: the sweep's
counterpart of ``train.spec.TrainSpec``, which holds every trial's run settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yolor_ray.errors import require_int
from yolor_ray.metrics import SCORE_METRIC
from yolor_ray.train.spec import RUN_NAME, OptionError, TrainSpec

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
    trainer_runs: bool = False  # every trial a TorchTrainer run, 1-worker ones too (else those train in their actor)
    confirm: int = 0  # the top K variants and the baseline trained again with `seeds` seeds each (tune/confirm.py)
    seeds: int = 2

    def __post_init__(self):
        for key, low in (("trials", 1), ("grace_period", 1), ("reduction_factor", 2)):
            require_int(f"SweepSpec({key})", getattr(self, key), low, OptionError)
        require_int("--confirm", self.confirm, 0, OptionError)
        require_int("--seeds", self.seeds, 2, OptionError, why=" (a paired interval needs two seeds)")
        require_int("SweepSpec(max_concurrent)", self.max_concurrent, 1, OptionError, optional=True)
        if self.search not in SEARCHES:
            raise OptionError(f"unknown search {self.search!r}; valid: {', '.join(SEARCHES)}")
        if self.mode not in ("max", "min"):
            raise OptionError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.name is not None and not RUN_NAME.match(self.name):
            raise OptionError(f"sweep name must match {RUN_NAME.pattern}, got {self.name!r}")
