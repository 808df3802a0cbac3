"""Train any MMDetection config with Ray Train: one MMEngine Runner per worker.

Driver side (``run_training``): validate everything, then start a ``TorchTrainer``;
afterwards write ``results.json``, curves and sample detections next to Ray's run
folder. Worker side (``train_worker``): Ray has already initialised the process
group, so the Runner is built with ``launcher='pytorch'`` and does not init again;
MMEngine wraps DDP and shards the data itself (no ``prepare_model``).

Resume: every (re)start of the worker group asks Ray for the latest checkpoint in
storage, which covers both a restarted worker group (``FailureConfig``) and the same
run name submitted again after its driver died. ``run.json``, written before training,
ties a run name to its config, so a name cannot be resumed with another config.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mmengine.config import Config

from yolor_ray import config as cfglib
from yolor_ray.checkpoint import TRUSTED_PREFIX
from yolor_ray.data import CocoFolder, DatasetError, inspect_coco_folder
from yolor_ray.registry import CHECKPOINT_FILE, RUN_STATE_FILE
from yolor_ray.spec import TrainSpec
from yolor_ray.storage import StorageSpec, open_storage

COLLECT_DEVICES = ("cpu", "gpu")  # where evaluators gather results: 'gpu' for multi-node GPU runs
RUN_FILE = "run.json"  # written before training: which config this run name belongs to
RAY_SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train's list of registered checkpoints

log = logging.getLogger("yolor_ray")


class ClusterTooSmallError(RuntimeError):
    """A run that asks for more than a fixed-size Ray cluster can ever hold."""


class RunFailedError(RuntimeError):
    """Training failed for good (restarts used up, or storage lost); checkpoints stay."""


class RunExistsError(FileExistsError):
    """A run name that is taken: finished, or started with another config."""


@dataclass(frozen=True)
class PreparedRun:
    """A validated run: the adapted config and where it will land. Nothing written yet."""

    spec: TrainSpec
    cfg: Config
    name: str
    storage: object  # LocalStorage | S3Storage
    classes: tuple[str, ...]
    num_params: int
    fingerprint: str
    resuming: bool
    checks: dict = field(default_factory=dict)  # what the driver found: data counts, load_from's keys
    data: CocoFolder | None = None  # the checked --data folder (None: the config's own dataset)

    @property
    def location(self) -> str:
        return self.storage.location(self.name)


def prepare_run(spec: TrainSpec, data: CocoFolder | None = None) -> PreparedRun:
    """Every check that can fail before Ray starts, without writing anything.

    ``data``: ``spec.data_root`` already inspected (a sweep parses its annotation files
    once, not once per trial).
    """
    cfg = cfglib.load_config(spec.config)
    checks = {}
    if spec.implicit is not None:
        cfglib.set_implicit(cfg, spec.implicit)
    if spec.data_root is not None:
        if data is None or data.root != spec.data_root.resolve():
            data = inspect_coco_folder(spec.data_root, spec.check_all_images)
        cfglib.use_coco_folder(cfg, data.train, data.val)
        classes = data.train.classes
        checks.update({split: f"{info.num_images} images, {info.num_annotations} annotations ({info.ann_file})"
                       for split, info in (("train", data.train), ("val", data.val))})
    else:
        data = None
    if spec.small:
        cfglib.make_small(cfg, spec.image_size)
    if spec.epochs is not None:
        cfglib.set_epochs(cfg, spec.epochs)
    if spec.batch_size is not None:
        cfglib.set_batch_size(cfg, spec.batch_size)
    cfg.randomness = dict(seed=spec.seed, deterministic=spec.deterministic)
    if spec.amp is not None:
        cfglib.set_amp(cfg, spec.amp)
    cfglib.use_implicit_recipe(cfg)
    cfglib.skip_unreadable_images(cfg)
    cfglib.apply_cfg_options(cfg, spec.cfg_options)  # last: the user's own options win
    if spec.load_from is not None:
        cfg.load_from = spec.load_from
    if spec.data_root is None:
        classes = tuple(cfg.get("metainfo", {}).get("classes", ()))
        _check_config_annotations(cfg)
    model = build_model(cfg)
    num_params = sum(p.numel() for p in model.parameters())
    check_runtime_parts(cfg, model)
    if cfg.get("load_from"):
        if isinstance(cfg.load_from, str) and "://" not in cfg.load_from:
            cfg.load_from = str(Path(cfg.load_from).expanduser().resolve())  # Ray moves workers' cwd
        checks["load_from"] = f"{cfg.load_from}: {check_load_from(cfg, model, spec.s3_endpoint)}"

    storage = open_storage(StorageSpec(spec.storage, spec.s3_endpoint))
    storage.check()
    name = spec.name or f"{spec.config.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    fingerprint = run_fingerprint(cfg, spec)
    resuming = _check_run_name(storage, name, fingerprint, spec)
    return PreparedRun(spec, cfg, name, storage, classes, num_params, fingerprint, resuming, checks, data)


def describe_run(run: PreparedRun) -> tuple[str, str]:
    """``--dry-run``: what would run (one line a fact) and the merged config."""
    spec, cfg = run.spec, run.cfg
    model = cfg.model
    implicit = model.get("implicit") or {}
    implicit = implicit.to_dict() if hasattr(implicit, "to_dict") else dict(implicit)
    variant = f"{model.detector} + YOLOR {implicit!r}" if model.type == "YOLOR" else model.type
    batch = cfg.train_dataloader.batch_size
    lines = [
        "dry run: nothing was started or written",
        f"config:   {spec.config}",
        f"model:    {variant}, {run.num_params / 1e6:.2f}M parameters",
        f"workers:  {spec.num_workers} x {'GPU' if spec.use_gpu else 'CPU'} ({spec.cpus_per_worker} CPU each), "
        f"batch {batch} per worker = {batch * spec.num_workers} in total",
        f"schedule: {cfg.train_cfg.get('max_epochs')} epochs, optimizer {cfg.optim_wrapper.optimizer.get('type')} "
        f"lr {cfg.optim_wrapper.optimizer.get('lr')} ({cfg.optim_wrapper.get('type', 'OptimWrapper')})",
        *(f"{key + ':':<9} {value}" for key, value in run.checks.items()),
        f"classes:  {', '.join(run.classes) or '(from the config)'}",
        f"storage:  {run.location} ({'resuming the unfinished run' if run.resuming else 'a new run'})",
    ]
    return "\n".join(lines), cfg.pretty_text


def run_fingerprint(cfg: Config, spec: TrainSpec) -> str:
    """The config text plus what the config does not hold but training depends on:
    the world size (the LR scales with the total batch) and the device."""
    text = cfg.pretty_text + json.dumps(_scale_of(spec), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scale_of(spec: TrainSpec) -> dict:
    return dict(num_workers=spec.num_workers, use_gpu=spec.use_gpu)


def run_manifest(run: "PreparedRun") -> dict:
    """run.json: which config and scale a run name belongs to."""
    return dict(config=str(run.spec.config), fingerprint=run.fingerprint, **_scale_of(run.spec))


def _check_run_name(storage, name: str, fingerprint: str, spec: TrainSpec | None = None) -> bool:
    """True when ``name`` is an unfinished run of this config (resume it)."""
    from yolor_ray.results import RESULTS_FILE

    if not storage.exists(name):
        return False
    if storage.read_text(name, RESULTS_FILE) is not None:
        raise RunExistsError(f"run {storage.location(name)!r} is complete (it has {RESULTS_FILE}); pick another --name")
    manifest = storage.read_text(name, RUN_FILE)
    if manifest is None:
        raise RunExistsError(f"{storage.location(name)!r} exists but is not a yolor-ray run; pick another --name")
    theirs = json.loads(manifest)
    if theirs.get("fingerprint") != fingerprint:
        changed = _scale_changes(theirs, spec) if spec is not None else []
        if changed:
            raise RunExistsError(f"run {storage.location(name)!r} was started with {' and '.join(changed)}; "
                                 "resume it with the same options, or start a new run with another --name")
        raise RunExistsError(f"run {storage.location(name)!r} belongs to a different config ({theirs.get('config')!r} "
                             f"with other settings); resume it with the same config and options, or pick another --name")
    return True


def _scale_changes(theirs: dict, spec: TrainSpec) -> list[str]:
    """'--num-workers 2 (now 1)', '--gpu (now without)': what differs from the run's run.json."""
    changed = []
    if "num_workers" in theirs and theirs["num_workers"] != spec.num_workers:
        changed.append(f"--num-workers {theirs['num_workers']} (now {spec.num_workers})")
    if "use_gpu" in theirs and bool(theirs["use_gpu"]) != spec.use_gpu:
        changed.append("--gpu (now without)" if theirs["use_gpu"] else "CPU workers (now --gpu)")
    return changed


def _check_config_annotations(cfg: Config) -> None:
    for name in ("train_dataloader", "val_dataloader"):
        dataset = cfglib.innermost_dataset(cfg[name])
        ann = Path(dataset.get("data_root") or "") / dataset.get("ann_file", "")
        if not ann.is_file():
            raise DatasetError(f"{name}'s annotation file {str(ann)!r} not found; pass --data DIR for a COCO-layout "
                               "folder (make one with: yolor-ray make-shapes DIR)")


def build_model(cfg: Config):
    """Build the model once on the driver: catches bad model keys before Ray starts."""
    import yolor_ray  # noqa: F401  (our registrations)
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get("default_scope", "mmdet"))
    try:
        return MODELS.build(cfg.model)
    except Exception as err:  # TypeError for unknown keys, KeyError for unknown types
        raise cfglib.ConfigError(f"model config does not build: {type(err).__name__}: {err}") from None


def count_parameters(cfg: Config) -> int:
    return sum(p.numel() for p in build_model(cfg).parameters())


def check_runtime_parts(cfg: Config, model) -> None:
    """Build what options can break besides the model, on the driver: the optim wrapper
    (on the built model), the evaluators, the process-group timeout."""
    from mmengine.evaluator import Evaluator
    from mmengine.optim import build_optim_wrapper

    wrapper = cfg.get("optim_wrapper")
    if wrapper is not None:
        if wrapper.get("type") == "AmpOptimWrapper" and not _cuda_available():
            # MMEngine's AMP wrapper asserts a GPU; the driver may have none: check what it is given.
            _check_signature("optim_wrapper", "AmpOptimWrapper", wrapper)
        else:
            try:
                build_optim_wrapper(model, copy.deepcopy(wrapper))
            except Exception as err:
                raise cfglib.ConfigError(f"optim_wrapper does not build: {type(err).__name__}: {err}") from None
    for key in ("val_evaluator", "test_evaluator"):
        for metric in cfglib.evaluators(cfg, (key,)):
            # MMEngine checks this only when it first collects results, after a training epoch.
            if metric.get("collect_device", "cpu") not in COLLECT_DEVICES:
                raise cfglib.ConfigError(f"{key}.collect_device must be one of {', '.join(COLLECT_DEVICES)}, "
                                         f"got {metric.get('collect_device')!r}")
        if cfg.get(key):
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it loads
                    Evaluator(copy.deepcopy(cfg[key]))
            except Exception as err:
                raise cfglib.ConfigError(f"{key} does not build: {type(err).__name__}: {err}") from None
    cfglib.dist_timeout_s(cfg)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _check_signature(key: str, type_name: str, part_cfg: dict) -> None:
    import inspect

    from mmengine.registry import OPTIM_WRAPPERS

    kwargs = {k: v for k, v in part_cfg.items() if k != "type"}
    try:
        inspect.signature(OPTIM_WRAPPERS.get(type_name)).bind(**kwargs)
    except TypeError as err:
        raise cfglib.ConfigError(f"{key} does not build: TypeError: {type_name} {err}") from None


def check_load_from(cfg: Config, model, s3_endpoint: str | None) -> str | None:
    """``load_from`` exists, loads under our allow-list and fits the model; returns what
    its keys cover (also logged): e.g. only the implicit keys missing for baseline -> YOLOR."""
    from yolor_ray.checkpoint import (CheckpointError, check_load_from_uri, compare_keys, fetch_checkpoint,
                                      load_checkpoint_file)

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
    return report.summary()


def run_training(spec: TrainSpec, callbacks: tuple = (), data: CocoFolder | None = None,
                 check_nodes: bool = True) -> dict:
    """Train (or resume), evaluate and write the run's results; returns the results record.

    ``callbacks``: Ray Train callbacks, e.g. Tune's report callback in a sweep's trial;
    ``data``: the dataset folder already inspected (see :func:`prepare_run`);
    ``check_nodes``: compare the data on every node first (a sweep does it once for all trials).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    from yolor_ray import results
    from yolor_ray.nodes import DataCheck, check_data_on_nodes  # imports ray: deferred with it

    run = prepare_run(spec, data)
    started_local = _connect_ray(spec)
    try:
        _check_cluster_fits(spec, fixed_size=started_local)
        data_check = DataCheck.of(run.data) if run.data is not None else None
        if data_check is not None and check_nodes and not started_local:  # a local Ray is this machine alone
            check_data_on_nodes(data_check, spec.resources_per_worker())
        if not run.resuming:
            run.storage.write_bytes(json.dumps(run_manifest(run)).encode(), run.name, RUN_FILE)
        storage_path, storage_filesystem = run.storage.ray_storage()
        trainer = TorchTrainer(
            train_worker,
            train_loop_config=dict(cfg=run.cfg.to_dict(), use_gpu=spec.use_gpu, threads=spec.cpus_per_worker,
                                   checkpoint_interval=spec.checkpoint_interval, data_check=data_check,
                                   run_name=run.name, storage=run.storage.portable_spec(),
                                   s3_endpoint=spec.s3_endpoint),
            torch_config=_torch_config(run.cfg),
            scaling_config=ScalingConfig(num_workers=spec.num_workers, use_gpu=spec.use_gpu,
                                         resources_per_worker=spec.resources_per_worker()),
            run_config=RunConfig(
                name=run.name,
                storage_path=storage_path,
                storage_filesystem=storage_filesystem,
                # The best checkpoints by bbox mAP, plus the latest (Ray always keeps it).
                checkpoint_config=CheckpointConfig(num_to_keep=spec.keep_checkpoints,
                                                   checkpoint_score_attribute=results.SCORE_METRIC,
                                                   checkpoint_score_order="max"),
                failure_config=FailureConfig(max_failures=spec.max_failures),
                callbacks=list(callbacks),
            ),
        )
        log.info("%s %s on %d %s worker(s); results in %s", "resuming" if run.resuming else "training",
                 spec.config.name, spec.num_workers, "GPU" if spec.use_gpu else "CPU", run.location)
        start = time.monotonic()
        try:
            result = trainer.fit()
        except TrainingFailedError as err:
            raise RunFailedError(f"run {run.location!r} failed: {err}\nIts registered checkpoints stay in storage: "
                                 f"the same command with --name {run.name} resumes from the last one") from None
        finally:
            try:
                remove_partial_checkpoints(run.storage, run.name)
            except Exception as err:  # storage still down: leave it for the next run of this name
                log.warning("could not check %s for partial checkpoints: %s", run.location, err)
        wall_time_s = time.monotonic() - start
    finally:
        if started_local:
            ray.shutdown()

    samples = {}
    if spec.num_samples and spec.data_root is not None:
        with result.checkpoint.as_directory() as ckpt_dir:
            samples["samples.png"] = results.render_samples(run.cfg, Path(ckpt_dir) / CHECKPOINT_FILE,
                                                            spec.num_samples)
    return write_results(run, Path(result.checkpoint.path).name, wall_time_s, extra_artifacts=samples)


def write_results(run: PreparedRun, checkpoint_dir: str, wall_time_s: float, status: str = "completed",
                  extra_artifacts: dict[str, bytes] | None = None) -> dict:
    """The run's config, curves and results.json, from the run state in ``checkpoint_dir``.

    ``status``: 'completed', or 'stopped' for a sweep's trial that its scheduler ended early.
    """
    from yolor_ray import results

    state = json.loads(run.storage.read_text(run.name, checkpoint_dir, RUN_STATE_FILE))
    artifacts = {"config.py": run.cfg.pretty_text.encode(), "curves.png": results.plot_curves(state["history"]),
                 **(extra_artifacts or {})}
    for file_name, data in artifacts.items():
        run.storage.write_bytes(data, run.name, file_name)
    record = results.build_record(run, state, world_size=run.spec.num_workers, wall_time_s=wall_time_s,
                                  checkpoint=run.storage.location(run.name, checkpoint_dir),
                                  artifacts=sorted(artifacts), status=status)
    # Last, and whole or not at all: a run without results.json is not complete.
    run.storage.write_bytes(json.dumps(record, indent=2).encode(), run.name, results.RESULTS_FILE)
    return record


def latest_checkpoint(storage, name: str) -> str | None:
    """The folder name of the run's latest checkpoint that Ray registered, if any."""
    snapshot = storage.read_text(name, RAY_SNAPSHOT_FILE)
    latest = json.loads(snapshot).get("latest_checkpoint_result") if snapshot else None
    return latest["checkpoint_dir_name"] if latest else None


def remove_partial_checkpoints(storage, name: str) -> list[str]:
    """Delete checkpoint folders that Ray's snapshot does not list: uploads cut short
    (a storage outage, a killed worker). What stays in storage is whole or absent."""
    snapshot = storage.read_text(name, RAY_SNAPSHOT_FILE)
    if snapshot is None:
        return []
    listed = {r["checkpoint_dir_name"] for r in json.loads(snapshot).get("checkpoint_results", [])}
    orphans = [d for d in storage.list_dirs(name) if d.startswith("checkpoint_") and d not in listed]
    for orphan in orphans:
        log.warning("removing partial checkpoint %s (not registered with Ray)", storage.location(name, orphan))
        storage.delete_tree(name, orphan)
    return orphans


def _torch_config(cfg: Config):
    """Ray sets up the process group, so MMEngine never reads ``env_cfg.dist_cfg.timeout``: Ray gets it."""
    from ray.train.torch import TorchConfig

    timeout_s = cfglib.dist_timeout_s(cfg)
    return TorchConfig() if timeout_s is None else TorchConfig(timeout_s=timeout_s)


def _connect_ray(spec: TrainSpec) -> bool:
    """Start a private local Ray (returns True) or connect to ``spec.address``."""
    import ray

    if ray.is_initialized():
        return False
    quiet = dict(log_to_driver=True, logging_level=logging.WARNING, configure_logging=True)
    if spec.address is None and not os.environ.get("RAY_ADDRESS"):
        # The dashboard serves Ray's state API, which Train's placement-group cleaner polls.
        ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", **quiet)
        return True
    ray.init(address=spec.address or os.environ["RAY_ADDRESS"], **quiet)
    return False


def _check_cluster_fits(spec: TrainSpec, fixed_size: bool) -> None:
    import ray

    total = ray.cluster_resources()
    need_cpu = spec.num_workers * spec.cpus_per_worker
    need_gpu = spec.num_workers if spec.use_gpu else 0
    short = []
    if need_cpu > total.get("CPU", 0):
        short.append(f"{need_cpu} CPUs ({spec.num_workers} workers x {spec.cpus_per_worker}) but it has "
                     f"{total.get('CPU', 0):g}")
    if need_gpu > total.get("GPU", 0):
        short.append(f"{need_gpu} GPUs but it has {total.get('GPU', 0):g}")
    for key, amount in spec.worker_resources.items():
        if spec.num_workers * amount > total.get(key, 0):
            short.append(f"{spec.num_workers * amount:g} {key!r} ({spec.num_workers} workers x {amount:g}) but it "
                         f"has {total.get(key, 0):g}")
    if not short:
        return
    if fixed_size:
        raise ClusterTooSmallError(
            "the local Ray cluster can never hold this run: it needs " + "; ".join(short)
            + ". Use fewer --num-workers or --cpus-per-worker, or --address of a larger cluster")
    log.warning("the cluster has too few resources right now (%s); waiting for the autoscaler to add nodes",
                "; ".join(short))


def _fetch_load_from(uri: str, work_dir: str, s3_endpoint: str | None) -> str:
    """``load_from`` through our allow-listed loader (and our own s3:// download)."""
    from yolor_ray.checkpoint import fetch_checkpoint

    return TRUSTED_PREFIX + str(fetch_checkpoint(uri, work_dir, s3_endpoint).resolve())


def _sync_buffers_hook(cfg: Config) -> list[dict]:
    """BN statistics averaged over ranks after each training epoch, before validation and the
    checkpoint: the AP reported is the AP of the model stored (not each rank's own BN)."""
    if any(h.get("type") == "SyncBuffersHook" for h in cfg.get("custom_hooks", [])):
        return []
    return [dict(type="SyncBuffersHook")]


def train_worker(config: dict) -> None:
    """Ray Train's per-worker function: one MMEngine Runner in this process."""
    import ray.train
    import torch
    from mmengine.runner import Runner

    import yolor_ray  # noqa: F401  (registries are per process)
    from yolor_ray.nodes import gather_topology, raise_if_data_differs, spans_nodes
    from yolor_ray.run_logs import upload_logs

    ctx = ray.train.get_context()
    if config["data_check"] is not None:
        # A node that joined after the driver's check (autoscaling) is checked here.
        raise_if_data_differs(config["data_check"])
    if config["use_gpu"]:
        # MMEngine only calls set_device when it initialises the group itself.
        torch.cuda.set_device(ctx.get_local_rank())
    else:
        torch.set_num_threads(config["threads"])
    cfg = Config(config["cfg"])
    if cfg.get("custom_imports"):
        # Config.fromfile imported them on the driver; a config rebuilt from a dict does not.
        from mmengine.utils import import_modules_from_strings

        import_modules_from_strings(**cfg.custom_imports)
    topology = gather_topology()
    if spans_nodes(topology):
        # Each node has its own disk: results are gathered through the process group.
        changed = cfglib.collect_through_process_group(cfg)
        if changed and ctx.get_world_rank() == 0:
            log.info("ranks on %d nodes: %s collect results through the process group",
                     len({r["node_id"] for r in topology}), ", ".join(changed))
    work_dir = tempfile.mkdtemp(prefix=f"yolor-ray-rank{ctx.get_world_rank()}-")
    cfg.work_dir = work_dir
    cfg.launcher = "pytorch"
    cfg.model_wrapper_cfg = dict(type="CPUFriendlyDDP", broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    cfg.default_hooks.checkpoint = None  # checkpoints go to Ray's storage through the report hook
    report_hook = dict(type="RayTrainReportHook", checkpoint_interval=config["checkpoint_interval"],
                       topology=topology)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            shutil.copy(Path(ckpt_dir) / CHECKPOINT_FILE, work_dir)
            state = json.loads((Path(ckpt_dir) / RUN_STATE_FILE).read_text())
        cfg.load_from = TRUSTED_PREFIX + str(Path(work_dir) / CHECKPOINT_FILE)
        cfg.resume = True
        report_hook.update(history=state["history"], restarts=state["restarts"] + 1)
    elif cfg.get("load_from"):
        cfg.load_from = _fetch_load_from(cfg.load_from, work_dir, config.get("s3_endpoint"))
    storage = dict(uri=config["storage"].uri, endpoint=config["storage"].endpoint)
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), *_sync_buffers_hook(cfg), report_hook,
                        dict(type="StorageLogHook", storage=storage, run_name=config["run_name"])]
    runner = None
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    finally:  # upload_logs never raises, so a failure's own traceback stays
        if runner is not None:
            # Also when training failed (rank 0's are in storage every epoch too); other ranks
            # write log files only when the config's logger is distributed.
            upload_logs(runner.log_dir, config["storage"], config["run_name"], ctx.get_world_rank())
        shutil.rmtree(work_dir, ignore_errors=True)
