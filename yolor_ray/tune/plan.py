"""A sweep once validated (``PreparedSweep``): its settings (``tune.spec.SweepSpec``), its space,
every trial's run settings and where it lands; nothing written yet."""
from __future__ import annotations

from dataclasses import dataclass

from yolor_ray.data.coco import CocoFolder
from yolor_ray.paired.capacity import trains_in_actor
from yolor_ray.storage import Storage
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune import space as spacelib
from yolor_ray.tune.spec import SweepSpec


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
    storage: Storage  # the sweep's parent
    fingerprint: str
    resuming: bool
    inputs: RunInputs | None = None  # --data inspected and --from's checkpoint found, once for the whole sweep
    finished: bool = False  # complete already: only its confirmation to run (--confirm)
    # The settings of the space's lists of choices its trials take, one per trial, distinct
    # (SearchSpace.pick): random and grid search; empty for Optuna, which picks its own.
    points: tuple[dict, ...] = ()

    @property
    def data(self) -> CocoFolder | None:
        return self.inputs.data if self.inputs is not None else None

    @property
    def trials(self) -> int:
        """How many trials the sweep runs."""
        return len(self.points) if self.points else self.spec.trials

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def in_actor(self) -> bool:
        """Trials train in their Tune actors (1 worker each), not in TorchTrainer runs."""
        return trains_in_actor(self.trial_spec, self.spec.trainer_runs)
