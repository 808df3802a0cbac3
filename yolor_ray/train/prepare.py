"""A run prepared on the driver before Ray starts, in two plain steps: :func:`run_config`
makes the run's config from its file in one pass, then :func:`prepare_run` checks it (the
data, the model and what options can break, ``load_from``, storage, the run name) and
returns a :class:`PreparedRun`. Nothing is written: ``train.driver`` launches what this
module prepared.

``run.json``, written before training, ties a run name to its config and scale, so a name
cannot be resumed with another (:func:`run_fingerprint`).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import io
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPERS

from yolor_ray import paths
from yolor_ray.config.edits import (
    make_small,
    set_amp,
    set_batch_size,
    set_epochs,
    set_implicit,
    skip_unreadable_images,
    use_batch_recipe,
    use_classwise_ap,
    use_coco_folder,
    use_cudnn_autotuner_where_shapes_are_fixed,
    use_implicit_recipe,
    use_project_coco_metric,
    use_tensorboard,
)
from yolor_ray.config.load import ConfigError, apply_cfg_options, load_config
from yolor_ray.config.parts import dist_timeout_s, evaluators, innermost_dataset
from yolor_ray.data.coco import CocoFolder, DatasetError, inspect_coco_folder
from yolor_ray.engine.checkpoint import (
    CheckpointError,
    KeyReport,
    check_load_from_uri,
    compare_keys,
    fetch_checkpoint,
    load_checkpoint_file,
)
from yolor_ray.errors import UserError
from yolor_ray.implicit import is_implicit_key, split_yolor_cfg
from yolor_ray.layout import RESULTS_FILE, RUN_FILE
from yolor_ray.models import build_model as build_in_scope
from yolor_ray.names import NameTakenError, complete, default_name, held_manifest, started_otherwise
from yolor_ray.records import RunManifest
from yolor_ray.storage import Storage, open_storage
from yolor_ray.train import warm_start
from yolor_ray.train.spec import TrainSpec
from yolor_ray.train.trackers import MLFLOW_BACKEND, prepare_mlflow_experiment, tracker_backends, tracker_params

log = logging.getLogger("yolor_ray")

COLLECT_DEVICES = ("cpu", "gpu")  # where evaluators gather results: 'gpu' for multi-node GPU runs

@dataclass(frozen=True)
class PreparedRun:
    """A validated run: the adapted config and where it will land. Nothing written yet."""

    spec: TrainSpec
    cfg: Config
    name: str
    storage: Storage
    classes: tuple[str, ...]
    num_params: int
    fingerprint: str
    resuming: bool
    checks: dict = field(default_factory=dict)  # what the driver found: data counts, load_from's keys
    data: CocoFolder | None = None  # the checked --data folder (None: the config's own dataset)
    trackers: tuple = ()  # MMEngine vis backend configs of --tracker, for rank 0
    config_text: str = ""  # cfg.pretty_text, formatted once

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def manifest(self) -> RunManifest:
        """run.json: which config and scale the name belongs to, and what is known before training."""
        detector_cfg, implicit = split_yolor_cfg(self.cfg.model)
        return RunManifest(
            config=str(self.spec.config), fingerprint=self.fingerprint, num_workers=self.spec.scaling.num_workers,
            use_gpu=self.spec.scaling.use_gpu, model=detector_cfg["type"], implicit=implicit,
            data_root=str(self.spec.data_root) if self.spec.data_root else None, classes=list(self.classes),
            small=self.spec.small, epochs=self.cfg.train_cfg.max_epochs, num_params=self.num_params,
            warm_start=self.spec.warm_start.from_baseline if self.spec.warm_start else None)


def prepare_run(spec: TrainSpec, data: CocoFolder | None = None, folder_made: bool = False) -> PreparedRun:
    """Every check that can fail before Ray starts, without writing anything: the run's
    config made in one pass (:func:`run_config`), then the checks on it.

    ``data``: ``spec.data_root`` already inspected (a sweep parses its annotation files
    once, not once per trial); ``folder_made``: the run's folder may exist without run.json
    (Tune made it: an in-process trial's folder is Tune's trial folder).
    """
    checks = {}
    if spec.data_root is not None:
        if data is None or data.root != spec.data_root.resolve():
            data = inspect_coco_folder(spec.data_root, spec.check_all_images)
        checks.update({split: f"{info.num_images} images, {info.num_annotations} annotations ({info.ann_file})"
                       for split, info in (("train", data.train), ("val", data.val))})
        classes = data.train.classes
    else:
        data = None
    cfg, model = config_and_model(spec, data)
    if data is None:
        classes = tuple(cfg.get("metainfo", {}).get("classes", ()))
        _check_config_annotations(cfg)
    num_params = sum(p.numel() for p in model.parameters())
    start = spec.warm_start
    if start is not None and start.train_params == "implicit" \
            and not any(is_implicit_key(k) for k, _ in model.named_parameters()):
        raise warm_start.BaselineError("--train implicit: this model has no implicit parameters (a baseline "
                                       "config; sweep its YOLOR variants, or train a YOLOR config)")
    check_runtime_parts(cfg, model)
    if cfg.get("load_from"):
        report = check_load_from(cfg, model, spec.storage.endpoint)
        if start is not None:
            checks["from"] = (f"{start.from_baseline} ({cfg.load_from}): "
                              + warm_start.check_baseline_fits(start.from_baseline, cfg.model.get("type"), report))
        else:
            checks["load_from"] = f"{cfg.load_from}: {report.summary()}"

    storage = open_storage(spec.storage)
    storage.check()
    name = spec.name or default_name(spec.config.stem)
    config_text = cfg.pretty_text  # formatted once (yapf): the fingerprint's and config.py's
    fingerprint = run_fingerprint(config_text, spec)
    resuming = _check_run_name(storage, name, fingerprint, spec, folder_made)
    trackers = prepare_trackers(spec, cfg, name)
    return PreparedRun(spec, cfg, name, storage, classes, num_params, fingerprint, resuming, checks, data, trackers,
                       config_text)


def run_config(spec: TrainSpec, data: CocoFolder | None) -> Config:
    """What a run trains, in one pass from its config file: the implicit variant, the dataset,
    the small scale, epochs and batch, seed, precision, YOLOR's optimizer recipe, our data and
    logging parts, the batch recipe, a warm start's weights and schedule, the user's
    ``--cfg-options`` (last: they win) and ``--load-from``. Reads no storage but the baseline
    a warm start names; checks only what each step needs to apply."""
    cfg = load_config(spec.config)
    if spec.implicit is not None:
        set_implicit(cfg, spec.implicit)
    if data is not None:
        use_coco_folder(cfg, data.train, data.val)
    if spec.small:
        make_small(cfg, spec.image_size)
    if spec.epochs is not None:
        set_epochs(cfg, spec.epochs)
    if spec.batch_size is not None:
        set_batch_size(cfg, spec.batch_size)
    cfg.randomness = dict(seed=spec.seed, deterministic=spec.deterministic)
    if spec.amp is not None:
        set_amp(cfg, spec.amp)
    use_implicit_recipe(cfg)
    skip_unreadable_images(cfg)
    use_tensorboard(cfg)
    use_classwise_ap(cfg)
    use_project_coco_metric(cfg, spec.coco_eval)
    use_batch_recipe(cfg, spec.scaling.cpus_per_worker)
    if spec.scaling.use_gpu:
        use_cudnn_autotuner_where_shapes_are_fixed(cfg)
    start = spec.warm_start
    if start is not None:
        cfg.load_from = warm_start.baseline_checkpoint(start.from_baseline, spec.storage.endpoint)
        warm_start.use_finetune_schedule(cfg, start.finetune_lr_factor)
        if start.train_params == "implicit":
            warm_start.train_implicit_only(cfg)
    apply_cfg_options(cfg, spec.cfg_options)  # last: the user's own options win
    if spec.load_from is not None:
        cfg.load_from = spec.load_from
    if isinstance(cfg.get("load_from"), str) and cfg.load_from and "://" not in cfg.load_from:
        cfg.load_from = str(Path(cfg.load_from).expanduser().resolve())  # Ray moves workers' cwd
    return cfg


def config_and_model(spec: TrainSpec, data: CocoFolder | None) -> tuple[Config, torch.nn.Module]:
    """The run's config (:func:`run_config`) and its model, built from it on the driver. Building
    completes the config: mmdet's detectors hand their train/test settings down into their
    heads' dicts, which config.py and the run's fingerprint hold."""
    cfg = run_config(spec, data)
    return cfg, build_model(cfg)


def fingerprint_of(spec: TrainSpec, data: CocoFolder | None) -> str:
    """The fingerprint a run of ``spec`` has in its run.json (:func:`run_fingerprint`), without the
    other checks of :func:`prepare_run`: is a stored run of that name this one?"""
    cfg, _ = config_and_model(spec, data)
    return run_fingerprint(cfg.pretty_text, spec)


def prepare_trackers(spec: TrainSpec, cfg: Config, name: str) -> tuple:
    """--tracker's backends for run ``name``, their packages and settings checked (and
    MLflow's experiment made) on the driver."""
    if not spec.trackers.names:
        return ()
    detector_cfg, implicit = split_yolor_cfg(cfg.model)
    params = tracker_params(implicit, cfg.optim_wrapper.optimizer.get("lr"), detector_cfg["type"], spec.config.name,
                            spec.scaling.num_workers, cfg.train_cfg.max_epochs, cfg.train_dataloader.batch_size)
    backends = tuple(tracker_backends(spec.trackers.names, name, params, spec.trackers.env))
    for backend in backends:
        if backend["type"] == MLFLOW_BACKEND:
            prepare_mlflow_experiment(backend["tracking_uri"], backend["exp_name"])
    return backends


def _effective_lr(cfg: Config, total_batch: int) -> str:
    """The learning rate MMEngine will train with: the config's, scaled by the total batch
    when ``auto_scale_lr`` is on (``config.edits.use_batch_recipe``)."""
    lr = cfg.optim_wrapper.optimizer.get("lr")
    scale = cfg.get("auto_scale_lr") or {}
    if lr is None or not scale.get("enable") or total_batch == scale["base_batch_size"]:
        return str(lr)
    return f"{lr * total_batch / scale['base_batch_size']:.6g} (the config's {lr} for a total batch of " \
           f"{scale['base_batch_size']}, scaled to {total_batch})"


def describe_run(run: PreparedRun) -> tuple[str, str]:
    """``--dry-run``: what would run (one line a fact) and the merged config."""
    spec, cfg = run.spec, run.cfg
    scaling = spec.scaling
    detector_cfg, implicit = split_yolor_cfg(cfg.model)
    variant = f"{detector_cfg['type']} + YOLOR {implicit!r}" if implicit is not None else detector_cfg["type"]
    batch = cfg.train_dataloader.batch_size
    lines = [
        "dry run: nothing was started or written",
        f"config:   {spec.config}",
        f"model:    {variant}, {run.num_params / 1e6:.2f}M parameters",
        f"workers:  {scaling.num_workers} x {'GPU' if scaling.use_gpu else 'CPU'} "
        f"({scaling.cpus_per_worker} CPU each), "
        f"batch {batch} per worker = {batch * scaling.num_workers} in total",
        f"schedule: {cfg.train_cfg.get('max_epochs')} epochs, optimizer {cfg.optim_wrapper.optimizer.get('type')} "
        f"lr {_effective_lr(cfg, batch * scaling.num_workers)} ({cfg.optim_wrapper.get('type', 'OptimWrapper')})",
        *(f"{key + ':':<9} {value}" for key, value in run.checks.items()),
        f"classes:  {', '.join(run.classes) or '(from the config)'}",
        f"storage:  {run.location} ({'resuming the unfinished run' if run.resuming else 'a new run'})",
        f"trackers: {', '.join(['tensorboard (logs/ in storage)', *spec.trackers.names])}",
    ]
    return "\n".join(lines), run.config_text


def run_fingerprint(config_text: str, spec: TrainSpec) -> str:
    """The config's text plus what the config does not hold but training depends on:
    the world size (the LR scales with the total batch) and the device."""
    scale = dict(num_workers=spec.scaling.num_workers, use_gpu=spec.scaling.use_gpu)
    text = config_text + json.dumps(scale, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_run_name(storage, name: str, fingerprint: str, spec: TrainSpec, folder_made: bool = False) -> bool:
    """True when ``name`` is an unfinished run of this config (resume it)."""
    if not storage.exists(name) or (folder_made and not storage.exists(name, RUN_FILE)):
        return False
    if storage.read_text(name, RESULTS_FILE) is not None:
        raise complete(storage, name, "run", RESULTS_FILE)
    theirs = held_manifest(storage, name, "run", RunManifest, RUN_FILE)
    if theirs.fingerprint != fingerprint:
        changed = _scale_changes(theirs, spec)
        if changed:
            raise started_otherwise(storage, name, "run", " and ".join(changed),
                                    "resume it with the same options, or start a new run with another --name")
        raise NameTakenError(f"run {storage.location(name)!r} belongs to a different config ({theirs.config!r} "
                             "with other settings); resume it with the same config and options, or pick another --name")
    return True


def _scale_changes(theirs: RunManifest, spec: TrainSpec) -> list[str]:
    """'--num-workers 2 (now 1)', '--gpu (now without)': what differs from the run's run.json."""
    changed = []
    if theirs.num_workers is not None and theirs.num_workers != spec.scaling.num_workers:
        changed.append(f"--num-workers {theirs.num_workers} (now {spec.scaling.num_workers})")
    if theirs.use_gpu is not None and bool(theirs.use_gpu) != spec.scaling.use_gpu:
        changed.append("--gpu (now without)" if theirs.use_gpu else "CPU workers (now --gpu)")
    return changed


def _check_config_annotations(cfg: Config) -> None:
    for name in ("train_dataloader", "val_dataloader"):
        dataset = innermost_dataset(cfg[name])
        ann = Path(dataset.get("data_root") or "") / dataset.get("ann_file", "")
        paths.input_file(ann, f"{name}'s annotation file", DatasetError,
                         hint="pass --data DIR for a COCO-layout folder (make one with: yolor-ray make-shapes DIR)")


# What a bad key or value in a config part raises while MMEngine's registry builds it (the
# registry keeps the exception's type): TypeError for an unknown argument, KeyError for an
# unknown type, ValueError and AssertionError for a value a class checks, FileNotFoundError for a
# file it names. Reported as the user's mistake in one line, the cause kept; any other exception
# is a bug and keeps its traceback.
BAD_CONFIG_ERRORS = (KeyError, TypeError, ValueError, AssertionError, FileNotFoundError)


def _does_not_build(key: str, err: Exception) -> ConfigError:
    return ConfigError(f"{key} does not build: {type(err).__name__}: {err}")


def build_model(cfg: Config):
    """Build the model once on the driver: catches bad model keys before Ray starts."""
    try:
        return build_in_scope(cfg.model, cfg.get("default_scope", "mmdet"))
    except UserError:
        raise
    except BAD_CONFIG_ERRORS as err:
        raise _does_not_build("model config", err) from err


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
                build_optim_wrapper(model, copy.deepcopy(wrapper))
            except BAD_CONFIG_ERRORS as err:
                raise _does_not_build("optim_wrapper", err) from err
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
                raise _does_not_build(key, err) from err
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
