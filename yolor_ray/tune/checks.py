"""What a sweep settles before Ray starts (:func:`yolor_ray.tune.sweep.prepare_sweep`): its
metric is one a run reports every epoch, its space searches what the config's model uses, its
search is one that can run, which trials it trains, and the fingerprint its name is held to."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging

from yolor_ray.config.load import ConfigError
from yolor_ray.config.parts import coco_tasks
from yolor_ray.metrics import TRAIN_LOSS, coco_keys
from yolor_ray.train.spec import OptionError
from yolor_ray.tune import space as spacelib
from yolor_ray.tune.spec import SweepSpec

log = logging.getLogger("yolor_ray")


def reported_metrics(cfg) -> list[str]:
    """The metric keys a run of ``cfg`` reports every epoch (EpochReportHook)."""
    return [*(key for task in coco_tasks(cfg) for key in coco_keys(task)), TRAIN_LOSS]


def check_reports(cfg, spec: SweepSpec) -> None:
    """A sweep ranks its trials by ``spec.metric`` after every epoch: the config validates every
    epoch and reports that metric."""
    if cfg.train_cfg.get("val_interval", 1) != 1:
        raise ConfigError(f"a sweep compares trials after every epoch, but {spec.config.name} validates every "
                          f"{cfg.train_cfg.val_interval} epochs; pass --cfg-options train_cfg.val_interval=1")
    valid_metrics = reported_metrics(cfg)
    if spec.metric not in valid_metrics:
        hint = [m for m in valid_metrics if spec.metric.split("/")[-1] in m][:3]
        raise ConfigError(f"metric {spec.metric!r} is never reported by {spec.config.name}"
                          + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else "")
                          + f"; it reports: {', '.join(valid_metrics)}")


def check_against_config(space: spacelib.SearchSpace, base_implicit: dict) -> None:
    """A searched setting that no variant would use, given the config's own settings."""
    if space["modeling"] is None:
        modeling = base_implicit.get("modeling", "vector")
        for key, needs in spacelib.MODELING_PARAMS.items():
            if space[key] is not None and modeling != needs:
                raise spacelib.SpaceError(f"{key}: searched, but only matters with modeling {needs!r}, and the "
                                          f"config's modeling is {modeling!r}; add modeling to the space")


def trials_of(space: spacelib.SearchSpace, search: str, trials: int, seed: int) -> tuple[str, tuple[dict, ...]]:
    """The search that runs and the settings of the space's lists of choices its trials take,
    distinct (one per trial; none for Optuna, which picks its own). A ``trials`` that covers a
    space without ranges runs its grid, whatever the search: every variant once."""
    size = space.num_variants()
    if search != "grid" and size is not None and trials >= size:
        log.info("--trials %d covers the whole space of %d variant(s): running the grid (%d trial(s))",
                 trials, size, size)
        search = "grid"
    if search == "optuna":
        return search, ()
    return search, tuple(space.pick(trials, seed, grid=search == "grid"))


def pick_search(search: str) -> str:
    if search != "auto":
        if search == "optuna" and not has_optuna():
            raise OptionError("--search optuna needs Optuna: pip install optuna")
        return search
    return "optuna" if has_optuna() else "random"


def has_optuna() -> bool:
    return importlib.util.find_spec("optuna") is not None


def sweep_fingerprint(config_text: str, run_fingerprint: str, space: spacelib.SearchSpace, search: str,
                      spec: SweepSpec) -> str:
    """What a sweep's name is held to: the same command resumes it, another one is refused."""
    return hashlib.sha256(json.dumps(dict(cfg=config_text, run=run_fingerprint,
                                          space=space.to_config(),
                                          search=search, trials=spec.trials, metric=spec.metric,
                                          mode=spec.mode, grace_period=spec.grace_period,
                                          reduction_factor=spec.reduction_factor,
                                          early_stopping=spec.early_stopping,
                                          trainer_trials=spec.trainer_runs),  # the key as stored: earlier sweeps resume
                                     sort_keys=True).encode()).hexdigest()[:16]
