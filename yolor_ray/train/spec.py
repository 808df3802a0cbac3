"""The settings of one training run, validated once on the driver and passed to workers.

Split by concern, as Ray Train splits ``ScalingConfig`` / ``RunConfig`` / ``CheckpointConfig``
/ ``FailureConfig``: each small frozen part checks its own fields; :class:`RunSettings` holds
what a run trains with and its parts, and checks the rules that span parts; :class:`TrainSpec`
adds the config file and the run's name. A sweep and a reproduction hold one ``RunSettings``
that each of their runs shares, with a config and a name given per run.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolor_ray.errors import UserError, require_int
from yolor_ray.metrics import COCO_EVAL_BACKENDS, SCORE_METRIC
from yolor_ray.storage import StorageSpec

AMP_MODES = (None, "fp16", "bf16")
TRACKERS = ("mlflow", "wandb")  # --tracker: MMEngine's MLflowVisBackend, WandbVisBackend
TRAIN_PARAMS = ("all", "implicit")  # --train: what a warm start fine-tunes
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_STORAGE = "./results"
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 64, 1333  # --small's one image scale: mmdet's largest side is 1333


class OptionError(UserError, ValueError):
    """An option of a run or a sweep that cannot be (a count below its minimum, a bad name)."""


@dataclass(frozen=True)
class Scaling:
    """How many workers, on what: Ray Train's ``ScalingConfig``."""

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    # Custom Ray resources each worker also asks for, e.g. {"a10g": 1} to pin workers to a node type.
    worker_resources: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("num_workers", "cpus_per_worker"):
            require_int(f"Scaling({name})", getattr(self, name), 1, OptionError)
        for key, amount in self.worker_resources.items():
            if key in ("CPU", "GPU", "memory") or not isinstance(amount, (int, float)) or amount <= 0:
                raise OptionError(
                    f"Scaling(worker_resources) takes custom resources with amounts > 0 (CPUs and "
                    f"GPUs have their own options), got {key}={amount!r}")

    def resources_per_worker(self) -> dict[str, float]:
        """What Ray reserves for each worker (GPUs through ScalingConfig's use_gpu)."""
        return {"CPU": self.cpus_per_worker, **self.worker_resources}

    def worker_reservation(self) -> dict[str, float]:
        """What each worker holds of the cluster, its GPU included."""
        return {**self.resources_per_worker(), **({"GPU": 1} if self.use_gpu else {})}

    def workers_reservation(self) -> dict[str, float]:
        """What all workers of the run hold of the cluster together."""
        return {key: self.num_workers * amount for key, amount in self.worker_reservation().items()}


@dataclass(frozen=True)
class Checkpointing:
    """Which checkpoints a run keeps and how often it recovers from them: Ray Train's
    ``CheckpointConfig`` and ``FailureConfig`` (a failed worker group restarts from the
    last checkpoint, ``max_failures`` times at most)."""

    interval: int = 1  # epochs between checkpoints
    keep: int = 2
    # What ranks the checkpoints kept: a sweep's trials use the sweep's --metric and --mode.
    metric: str = SCORE_METRIC
    mode: str = "max"
    max_failures: int = 3

    def __post_init__(self):
        for name, low in (("interval", 1), ("keep", 1), ("max_failures", 0)):
            require_int(f"Checkpointing({name})", getattr(self, name), low, OptionError)
        if self.mode not in ("max", "min"):
            raise OptionError(f"Checkpointing(mode) must be 'max' or 'min', got {self.mode!r}")


@dataclass(frozen=True)
class Trackers:
    """Experiment trackers beside TensorBoard ('mlflow', 'wandb') and their settings
    (``train.trackers.tracker_settings``)."""

    names: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(dict.fromkeys(self.names)))
        unknown = [t for t in self.names if t not in TRACKERS]
        if unknown:
            raise OptionError(f"Trackers(names): unknown tracker {unknown[0]!r}; valid are {', '.join(TRACKERS)}")


@dataclass(frozen=True)
class WarmStart:
    """A warm start (``yolor_ray.train.warm_start``): a trained baseline run folder or
    checkpoint to fine-tune from, which parameters train, and the fine-tuning LR factor."""

    from_baseline: str
    train_params: str = "all"  # 'implicit': fine-tune the implicit parameters alone
    finetune_lr_factor: float = 0.1  # the fine-tuning LR: the config's x this

    def __post_init__(self):
        if not isinstance(self.from_baseline, str) or not self.from_baseline:
            raise OptionError(f"WarmStart(from_baseline) must be a run folder or checkpoint, got "
                              f"{self.from_baseline!r}")
        if self.train_params not in TRAIN_PARAMS:
            raise OptionError(f"--train must be one of {', '.join(TRAIN_PARAMS)}, got {self.train_params!r}")
        if isinstance(self.finetune_lr_factor, bool) or not isinstance(self.finetune_lr_factor, (int, float)) \
                or self.finetune_lr_factor <= 0:
            raise OptionError(f"--finetune-lr-factor must be a number > 0, got {self.finetune_lr_factor!r}")


def warm_start_of(from_baseline: str | None, train_params: str = "all",
                  finetune_lr_factor: float = 0.1) -> WarmStart | None:
    """``--from``, ``--train``, ``--finetune-lr-factor`` as a part (None: no warm start)."""
    if from_baseline is None:
        if train_params != "all":
            raise OptionError(f"--train {train_params} fine-tunes a warm start: pass --from BASELINE")
        return None
    return WarmStart(from_baseline, train_params, finetune_lr_factor)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a run trains with, but for its config and name: what every run of a sweep or a
    reproduction shares. ``address=None`` starts a private local Ray sized to this machine
    (fixed size: asking for more workers than it holds is an error); any other address
    connects to that cluster, where an autoscaler may add nodes."""

    data_root: Path | None = None
    small: bool = False
    image_size: int = 256
    epochs: int | None = None
    batch_size: int | None = None
    address: str | None = None
    cfg_options: dict[str, Any] = field(default_factory=dict)
    implicit: dict[str, Any] | None = None  # make the model a YOLOR variant with these settings (a sweep's trial)
    seed: int = 0
    check_all_images: bool = False  # up front, look for every image file, not a sample (data.IMAGE_SAMPLE)
    num_samples: int = 4
    load_from: str | None = None  # a checkpoint to start from: a local path or s3://bucket/key
    deterministic: bool = False  # MMEngine's randomness.deterministic (cuDNN / torch deterministic algorithms)
    amp: str | None = None  # None, 'fp16' (GPU) or 'bf16' (GPU or CPU)
    verbose: bool = False  # the workers' raw output on the driver too
    # Validation's COCOeval: faster-coco-eval's (when installed; pycocotools' otherwise) or pycocotools'.
    coco_eval: str = "faster"
    scaling: Scaling = field(default_factory=Scaling)
    storage: StorageSpec = field(default_factory=lambda: StorageSpec(DEFAULT_STORAGE))
    checkpoints: Checkpointing = field(default_factory=Checkpointing)
    trackers: Trackers = field(default_factory=Trackers)
    warm_start: WarmStart | None = None

    def __post_init__(self):
        if self.data_root is not None:
            object.__setattr__(self, "data_root", Path(self.data_root))
        require_int("RunSettings(image_size)", self.image_size, MIN_IMAGE_SIZE, OptionError, high=MAX_IMAGE_SIZE)
        for name in ("seed", "num_samples"):
            require_int(f"RunSettings({name})", getattr(self, name), 0, OptionError)
        for name in ("epochs", "batch_size"):
            require_int(f"RunSettings({name})", getattr(self, name), 1, OptionError, optional=True)
        if self.amp not in AMP_MODES:
            raise OptionError(f"RunSettings(amp) must be one of {', '.join(map(repr, AMP_MODES))}, got {self.amp!r}")
        if self.amp == "fp16" and not self.scaling.use_gpu:
            raise OptionError("RunSettings(amp='fp16') needs --gpu (fp16 autocast is CUDA only); "
                              "on a CPU use --amp bf16")
        if self.load_from is not None and (not isinstance(self.load_from, str) or not self.load_from):
            raise OptionError(f"RunSettings(load_from) must be a path or s3://bucket/key, got {self.load_from!r}")
        if self.warm_start is not None and self.load_from is not None:
            raise OptionError("--from and --load-from both name the weights to start from; pass one")
        if self.coco_eval not in COCO_EVAL_BACKENDS:
            raise OptionError(f"--coco-eval must be one of {', '.join(COCO_EVAL_BACKENDS)}, got {self.coco_eval!r}")

    def for_run(self, config: Path | str, name: str | None = None) -> TrainSpec:
        """One run of these settings: ``config`` trained under ``name`` (None: a dated default)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunSettings)}
        return TrainSpec(config=config, name=name, **shared)


@dataclass(frozen=True, kw_only=True)
class TrainSpec(RunSettings):
    """One ``yolor-ray train`` run: its settings, its config file and its name."""

    config: Path
    name: str | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "config", Path(self.config))
        if self.name is not None and not RUN_NAME.match(self.name):
            raise OptionError(
                f"TrainSpec(name) must match {RUN_NAME.pattern} (letters, digits, '.', '_', '-'), "
                f"got {self.name!r}")
