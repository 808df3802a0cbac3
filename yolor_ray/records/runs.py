"""What one training run leaves: ``run.json`` before it trains, ``run_state.json`` in each
checkpoint, ``results.json`` at its end."""
from __future__ import annotations

from dataclasses import dataclass, field

from yolor_ray.records.base import Record

# In each epoch's record of a run's history: seconds from the epoch's start to its report
# (training and its validation). Summed, the time a run trained, across restarts and resumes.
EPOCH_TIME = "epoch_time_s"


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
