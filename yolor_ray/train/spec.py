"""The settings of one training run, validated once on the driver and passed to workers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolor_ray.errors import UserError, require_int
from yolor_ray.metrics import COCO_EVAL_BACKENDS, SCORE_METRIC

AMP_MODES = (None, "fp16", "bf16")
TRACKERS = ("mlflow", "wandb")  # --tracker: MMEngine's MLflowVisBackend, WandbVisBackend
TRAIN_PARAMS = ("all", "implicit")  # --train: what a warm start fine-tunes
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class OptionError(UserError, ValueError):
    """An option of a run or a sweep that cannot be (a count below its minimum, a bad name)."""


@dataclass(frozen=True)
class TrainSpec:
    """One ``yolor-ray train`` run.

    ``address=None`` starts a private local Ray sized to this machine (fixed size:
    asking for more workers than it holds is an error); any other address connects
    to that cluster, where an autoscaler may add nodes.
    """

    config: Path
    data_root: Path | None = None
    small: bool = False
    image_size: int = 256
    epochs: int | None = None
    batch_size: int | None = None
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    # Custom Ray resources each worker also asks for, e.g. {"a10g": 1} to pin workers to a node type.
    worker_resources: dict[str, float] = field(default_factory=dict)
    storage: str = "./results"
    s3_endpoint: str | None = None
    name: str | None = None
    address: str | None = None
    cfg_options: dict[str, Any] = field(default_factory=dict)
    implicit: dict[str, Any] | None = None  # make the model a YOLOR variant with these settings (a sweep's trial)
    seed: int = 0
    check_all_images: bool = False  # up front, look for every image file, not a sample (data.IMAGE_SAMPLE)
    num_samples: int = 4
    checkpoint_interval: int = 1
    keep_checkpoints: int = 2
    # What ranks the checkpoints kept: a sweep's trials use the sweep's --metric and --mode.
    checkpoint_metric: str = SCORE_METRIC
    checkpoint_mode: str = "max"
    max_failures: int = 3
    load_from: str | None = None  # a checkpoint to start from: a local path or s3://bucket/key
    deterministic: bool = False  # MMEngine's randomness.deterministic (cuDNN / torch deterministic algorithms)
    amp: str | None = None  # None, 'fp16' (GPU) or 'bf16' (GPU or CPU)
    trackers: tuple[str, ...] = ()  # experiment trackers beside TensorBoard: 'mlflow', 'wandb'
    tracker_env: dict[str, str] = field(default_factory=dict)  # their settings (train.trackers.tracker_settings)
    verbose: bool = False  # the workers' raw output on the driver too
    # A warm start (yolor_ray.train.warm_start): a trained baseline run folder or checkpoint to fine-tune from.
    from_baseline: str | None = None
    train_params: str = "all"  # 'implicit': fine-tune the implicit parameters alone
    finetune_lr_factor: float = 0.1  # the fine-tuning LR: the config's x this
    # Validation's COCOeval: faster-coco-eval's (when installed; pycocotools' otherwise) or pycocotools'.
    coco_eval: str = "faster"

    def __post_init__(self):
        object.__setattr__(self, "config", Path(self.config))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", Path(self.data_root))
        for name, low in (("num_workers", 1), ("cpus_per_worker", 1), ("image_size", 64), ("seed", 0),
                          ("num_samples", 0), ("checkpoint_interval", 1), ("keep_checkpoints", 1),
                          ("max_failures", 0)):
            require_int(f"TrainSpec({name})", getattr(self, name), low, OptionError)
        for name in ("epochs", "batch_size"):
            require_int(f"TrainSpec({name})", getattr(self, name), 1, OptionError, optional=True)
        for key, amount in self.worker_resources.items():
            if key in ("CPU", "GPU", "memory") or not isinstance(amount, (int, float)) or amount <= 0:
                raise OptionError(
                    f"TrainSpec(worker_resources) takes custom resources with amounts > 0 (CPUs and "
                    f"GPUs have their own options), got {key}={amount!r}")
        if self.checkpoint_mode not in ("max", "min"):
            raise OptionError(f"TrainSpec(checkpoint_mode) must be 'max' or 'min', got {self.checkpoint_mode!r}")
        if self.amp not in AMP_MODES:
            raise OptionError(f"TrainSpec(amp) must be one of {', '.join(map(repr, AMP_MODES))}, got {self.amp!r}")
        if self.amp == "fp16" and not self.use_gpu:
            raise OptionError("TrainSpec(amp='fp16') needs --gpu (fp16 autocast is CUDA only); on a CPU use --amp bf16")
        if self.load_from is not None and (not isinstance(self.load_from, str) or not self.load_from):
            raise OptionError(f"TrainSpec(load_from) must be a path or s3://bucket/key, got {self.load_from!r}")
        object.__setattr__(self, "trackers", tuple(dict.fromkeys(self.trackers)))
        unknown = [t for t in self.trackers if t not in TRACKERS]
        if unknown:
            raise OptionError(f"TrainSpec(trackers): unknown tracker {unknown[0]!r}; valid are {', '.join(TRACKERS)}")
        if self.from_baseline is not None:
            if not isinstance(self.from_baseline, str) or not self.from_baseline:
                raise OptionError(f"TrainSpec(from_baseline) must be a run folder or checkpoint, got "
                                  f"{self.from_baseline!r}")
            if self.load_from is not None:
                raise OptionError("--from and --load-from both name the weights to start from; pass one")
        if self.coco_eval not in COCO_EVAL_BACKENDS:
            raise OptionError(f"--coco-eval must be one of {', '.join(COCO_EVAL_BACKENDS)}, got {self.coco_eval!r}")
        if self.train_params not in TRAIN_PARAMS:
            raise OptionError(f"--train must be one of {', '.join(TRAIN_PARAMS)}, got {self.train_params!r}")
        if self.train_params != "all" and self.from_baseline is None:
            raise OptionError(f"--train {self.train_params} fine-tunes a warm start: pass --from BASELINE")
        if isinstance(self.finetune_lr_factor, bool) or not isinstance(self.finetune_lr_factor, (int, float)) \
                or self.finetune_lr_factor <= 0:
            raise OptionError(f"--finetune-lr-factor must be a number > 0, got {self.finetune_lr_factor!r}")
        if self.name is not None and not RUN_NAME.match(self.name):
            raise OptionError(
                f"TrainSpec(name) must match {RUN_NAME.pattern} (letters, digits, '.', '_', '-'), "
                f"got {self.name!r}")

    def resources_per_worker(self) -> dict[str, float]:
        """What Ray reserves for each worker (GPUs through ScalingConfig's use_gpu)."""
        return {"CPU": self.cpus_per_worker, **self.worker_resources}

    def worker_reservation(self) -> dict[str, float]:
        """What each worker holds of the cluster, its GPU included."""
        return {**self.resources_per_worker(), **({"GPU": 1} if self.use_gpu else {})}

    def workers_reservation(self) -> dict[str, float]:
        """What all workers of the run hold of the cluster together."""
        return {key: self.num_workers * amount for key, amount in self.worker_reservation().items()}
