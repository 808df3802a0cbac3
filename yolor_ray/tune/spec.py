"""The settings of one ``yolor-ray tune`` sweep, validated once on the driver: the sweep's
counterpart of ``train.spec.TrainSpec``: a config and the run settings every trial shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolor_ray.errors import require_int
from yolor_ray.metrics import SCORE_METRIC, is_coco_ap
from yolor_ray.resolution import Resolution, ResolutionError
from yolor_ray.train.spec import RUN_NAME, OptionError, RunSettings

SEARCHES = ("auto", "random", "grid", "optuna")


@dataclass(frozen=True)
class SweepSpec:
    """One ``yolor-ray tune`` sweep of ``config``. ``train`` holds the run settings every
    trial shares (trials are named by Tune); ``space`` is the raw search space."""

    config: Path
    train: RunSettings
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
    trainer_runs: bool = False  # every run a TorchTrainer run, 1-worker ones too (else those train in their Tune actor)
    confirm: int = 0  # the top K variants and the baseline trained again with `seeds` seeds each (tune/confirm.py)
    seeds: int = 2
    resolution: Resolution = field(default_factory=Resolution)  # the confirmation's seeds on demand: `seeds` the pilot

    def __post_init__(self):
        object.__setattr__(self, "config", Path(self.config))
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
        if self.resolution.target is not None and not self.confirm:
            raise ResolutionError("--resolution sets how far --confirm K runs its comparisons: add --confirm K")
        if self.resolution.target is not None and not is_coco_ap(self.metric):
            raise ResolutionError(f"--resolution H is in AP points: --metric must be a COCO AP such as coco/bbox_mAP, "
                                  f"got {self.metric!r}")
        self.resolution.check(self.seeds)
