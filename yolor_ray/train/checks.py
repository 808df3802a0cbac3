"""What a run's adapted config is checked for on the driver, after its model builds and before
Ray starts: its annotation files, a warm start that fits, the parts options can break (optim
wrapper, evaluators, process-group timeout), ``load_from`` and the trackers."""
from __future__ import annotations

import contextlib
import copy
import inspect
import io
import logging
import tempfile
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPERS

from yolor_ray import paths
from yolor_ray.config.load import ConfigError
from yolor_ray.config.parts import dist_timeout_s, evaluators, innermost_dataset
from yolor_ray.data.coco import DatasetError
from yolor_ray.engine.checkpoint import (
    CheckpointError,
    KeyReport,
    check_load_from_uri,
    compare_keys,
    fetch_checkpoint,
    load_checkpoint_file,
)
from yolor_ray.train import warm_start
from yolor_ray.train.quiet import quiet_mmengine
from yolor_ray.train.run_config import BAD_CONFIG_ERRORS, RunInputs, does_not_build
from yolor_ray.train.spec import TrainSpec
from yolor_ray.train.trackers import MLFLOW_BACKEND, prepare_mlflow_experiment, tracker_backends

log = logging.getLogger("yolor_ray")

COLLECT_DEVICES = ("cpu", "gpu")  # where evaluators gather results: 'gpu' for multi-node GPU runs


def check_run_config(spec: TrainSpec, cfg: Config, model: torch.nn.Module, inputs: RunInputs) -> dict[str, str]:
    """Every check of the adapted config; returns what was found, one line a fact (``--dry-run``):
    the data's counts, what ``load_from`` or the warm start's baseline loads."""
    checks = {}
    if inputs.data is not None:
        checks.update({split: f"{info.num_images} images, {info.num_annotations} annotations ({info.ann_file})"
                       for split, info in (("train", inputs.data.train), ("val", inputs.data.val))})
    else:
        check_config_annotations(cfg)
    if spec.warm_start is not None:
        warm_start.check_trains_implicit(spec.warm_start, model)
    check_runtime_parts(cfg, model)
    if cfg.get("load_from"):
        report = check_load_from(cfg, model, spec.storage.endpoint)
        if spec.warm_start is not None:
            baseline = spec.warm_start.from_baseline
            checks["from"] = (f"{baseline} ({cfg.load_from}): "
                              + warm_start.check_baseline_fits(baseline, cfg.model.get("type"), report))
        else:
            checks["load_from"] = f"{cfg.load_from}: {report.summary()}"
    check_trackers(spec)
    return checks


def check_trackers(spec: TrainSpec) -> None:
    """--tracker's packages and settings, and MLflow's experiment made (concurrent runs would
    otherwise race to create it)."""
    for backend in tracker_backends(spec.trackers.names, "check", {}, spec.trackers.env):
        if backend["type"] == MLFLOW_BACKEND:
            prepare_mlflow_experiment(backend["tracking_uri"], backend["exp_name"])


def check_config_annotations(cfg: Config) -> None:
    """Without --data, the config's own annotation files exist."""
    for name in ("train_dataloader", "val_dataloader"):
        dataset = innermost_dataset(cfg[name])
        ann = Path(dataset.get("data_root") or "") / dataset.get("ann_file", "")
        paths.input_file(ann, f"{name}'s annotation file", DatasetError,
                         hint="pass --data DIR for a COCO-layout folder (make one with: yolor-ray make-shapes DIR)")


def check_runtime_parts(cfg: Config, model) -> None:
    """Build what options can break besides the model, on the driver: the optim wrapper
    (on the built model), the evaluators, the process-group timeout."""
    wrapper = cfg.get("optim_wrapper")
    if wrapper is not None:
        if wrapper.get("type") == "AmpOptimWrapper" and not torch.cuda.is_available():
            # MMEngine's AMP wrapper asserts a GPU; the driver may have none: check what it is given.
            _check_signature("optim_wrapper", "AmpOptimWrapper", wrapper)
        else:
            try:
                with quiet_mmengine():  # its constructor logs each parameter's options at INFO
                    build_optim_wrapper(model, copy.deepcopy(wrapper))
            except BAD_CONFIG_ERRORS as err:
                raise does_not_build("optim_wrapper", err) from err
    for key in ("val_evaluator", "test_evaluator"):
        for metric in evaluators(cfg, (key,)):
            # MMEngine checks this only when it first collects results, after a training epoch.
            if metric.get("collect_device", "cpu") not in COLLECT_DEVICES:
                raise ConfigError(f"{key}.collect_device must be one of {', '.join(COLLECT_DEVICES)}, "
                                  f"got {metric.get('collect_device')!r}")
        if cfg.get(key):
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it loads
                    Evaluator(copy.deepcopy(cfg[key]))
            except BAD_CONFIG_ERRORS as err:
                raise does_not_build(key, err) from err
    dist_timeout_s(cfg)


def _check_signature(key: str, type_name: str, part_cfg: dict) -> None:
    kwargs = {k: v for k, v in part_cfg.items() if k != "type"}
    try:
        inspect.signature(OPTIM_WRAPPERS.get(type_name)).bind(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{key} does not build: TypeError: {type_name} {err}") from None


def check_load_from(cfg: Config, model, s3_endpoint: str | None) -> KeyReport | None:
    """``load_from`` exists, loads under our allow-list and fits the model; returns what
    its keys cover (also logged): e.g. only the implicit keys missing for baseline -> YOLOR."""
    uri = cfg.get("load_from")
    if not uri:
        return None
    check_load_from_uri(uri)
    with tempfile.TemporaryDirectory(prefix="yolor-ray-load-from-") as tmp:
        checkpoint = load_checkpoint_file(fetch_checkpoint(uri, tmp, s3_endpoint))
    report = compare_keys(model, checkpoint)
    if report.matched == 0:
        raise CheckpointError(f"load_from {uri!r} does not fit {cfg.model.get('type')}: none of its keys match the "
                              f"model ({report.summary()})")
    log.info("load_from %s: %s", uri, report.summary())
    return report
