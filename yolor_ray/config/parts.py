"""What a loaded config says, read without changing it: its evaluators and the COCO tasks they
evaluate, a dataloader's innermost dataset, whether it validates or has a mask head, its
process group's timeout."""
from __future__ import annotations

from mmengine.config import Config

from yolor_ray.config.load import ConfigError
from yolor_ray.metrics import COCO_METRIC_TYPES


def has_mask_head(cfg: Config) -> bool:
    roi_head = cfg.model.get("roi_head") or {}
    return bool(roi_head.get("mask_head"))


def innermost_dataset(dataloader_cfg: dict) -> dict:
    """A dataloader's dataset config, looking through wrappers (RepeatDataset, ...)."""
    dataset = dataloader_cfg["dataset"]
    while "dataset" in dataset and "ann_file" not in dataset:
        dataset = dataset["dataset"]
    return dataset


def validates(cfg: Config) -> bool:
    """Whether MMEngine's Runner builds a validation loop for this config."""
    return cfg.get("val_cfg") is not None and cfg.get("val_dataloader") is not None


def evaluators(cfg: Config, names: tuple[str, ...] = ("val_evaluator", "test_evaluator")) -> list[dict]:
    """Every evaluator config of these loops (each may be one dict or a list)."""
    found = []
    for name in names:
        value = cfg.get(name) or []
        found += value if isinstance(value, (list, tuple)) else [value]
    return found


def coco_tasks(cfg: Config, names: tuple[str, ...] = ("val_evaluator",)) -> list[str]:
    """The tasks ('bbox', 'segm') every CocoMetric of these loops evaluates."""
    tasks = []
    for evaluator in evaluators(cfg, names):
        if evaluator.get("type") in COCO_METRIC_TYPES:
            metric = evaluator.get("metric", "bbox")
            tasks += [task for task in ([metric] if isinstance(metric, str) else metric) if task not in tasks]
    return tasks


def dist_timeout_s(cfg: Config) -> float | None:
    """``env_cfg.dist_cfg.timeout`` (seconds, as in MMEngine), checked; None when unset."""
    timeout = ((cfg.get("env_cfg") or {}).get("dist_cfg") or {}).get("timeout")
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"env_cfg.dist_cfg.timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)
