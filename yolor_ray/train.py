"""Train any MMDetection config with Ray Train: one MMEngine Runner per worker.

Driver side (``run_training``): validate everything, then start a ``TorchTrainer``;
afterwards write ``results.json``, curves and sample detections next to Ray's run
folder. Worker side (``train_worker``): Ray has already initialised the process
group, so the Runner is built with ``launcher='pytorch'`` and does not init again;
MMEngine wraps DDP and shards the data itself (no ``prepare_model``).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mmengine.config import Config

from yolor_ray import config as cfglib
from yolor_ray.data import DatasetError, inspect_coco_split
from yolor_ray.registry import CHECKPOINT_FILE, HISTORY_FILE
from yolor_ray.spec import TrainSpec

log = logging.getLogger("yolor_ray")


class ClusterTooSmallError(RuntimeError):
    """A run that asks for more than a fixed-size Ray cluster can ever hold."""


class RunExistsError(FileExistsError):
    """A run folder that already holds a run of that name."""


@dataclass(frozen=True)
class PreparedRun:
    """A validated run: the adapted config and where it will land. Nothing written yet."""

    spec: TrainSpec
    cfg: Config
    name: str
    storage_path: str
    run_dir: Path
    classes: tuple[str, ...]
    num_params: int


def prepare_run(spec: TrainSpec) -> PreparedRun:
    """Every check that can fail before Ray starts, without writing anything."""
    cfg = cfglib.load_config(spec.config, spec.cfg_options)
    if spec.data_root is not None:
        try:
            train = inspect_coco_split(spec.data_root, "train")
            val = inspect_coco_split(spec.data_root, "val")
        except DatasetError:
            raise
        cfglib.use_coco_folder(cfg, train, val)
        classes = train.classes
    else:
        classes = tuple(cfg.get("metainfo", {}).get("classes", ()))
        _check_config_annotations(cfg)
    if spec.small:
        cfglib.make_small(cfg, spec.image_size)
    if spec.epochs is not None:
        cfglib.set_epochs(cfg, spec.epochs)
    if spec.batch_size is not None:
        cfglib.set_batch_size(cfg, spec.batch_size)
    cfg.randomness = dict(seed=spec.seed)
    num_params = count_parameters(cfg)

    storage_path = spec.storage if spec.storage.startswith("s3://") else str(Path(spec.storage).resolve())
    if storage_path.startswith("s3://"):
        raise cfglib.ConfigError("s3:// storage is not supported yet; pass a local folder to --storage")
    name = spec.name or f"{spec.config.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = Path(storage_path) / name
    if run_dir.exists():
        raise RunExistsError(f"run folder {str(run_dir)!r} already exists; pick another --name")
    return PreparedRun(spec, cfg, name, storage_path, run_dir, classes, num_params)


def _check_config_annotations(cfg: Config) -> None:
    for name in ("train_dataloader", "val_dataloader"):
        dataset = cfg[name]["dataset"]
        while "dataset" in dataset and "ann_file" not in dataset:
            dataset = dataset["dataset"]
        ann = Path(dataset.get("data_root") or "") / dataset.get("ann_file", "")
        if not ann.is_file():
            raise DatasetError(f"{name}'s annotation file {str(ann)!r} not found; pass --data DIR for a COCO-layout "
                               "folder (make one with: yolor-ray make-shapes DIR)")


def count_parameters(cfg: Config) -> int:
    """Build the model once on the driver: catches bad model keys before Ray starts."""
    import yolor_ray  # noqa: F401  (our registrations)
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get("default_scope", "mmdet"))
    try:
        model = MODELS.build(cfg.model)
    except Exception as err:  # TypeError for unknown keys, KeyError for unknown types
        raise cfglib.ConfigError(f"model config does not build: {type(err).__name__}: {err}") from None
    return sum(p.numel() for p in model.parameters())


def run_training(spec: TrainSpec) -> dict:
    """Train, evaluate and write the run's results; returns the results record."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run = prepare_run(spec)
    started_local = _connect_ray(spec)
    try:
        _check_cluster_fits(spec, fixed_size=started_local)
        trainer = TorchTrainer(
            train_worker,
            train_loop_config=dict(cfg=run.cfg.to_dict(), use_gpu=spec.use_gpu, threads=spec.cpus_per_worker),
            scaling_config=ScalingConfig(num_workers=spec.num_workers, use_gpu=spec.use_gpu,
                                         resources_per_worker={"CPU": spec.cpus_per_worker}),
            run_config=RunConfig(
                name=run.name,
                storage_path=run.storage_path,
                checkpoint_config=CheckpointConfig(num_to_keep=2),
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        log.info("training %s on %d %s worker(s); results in %s", spec.config.name, spec.num_workers,
                 "GPU" if spec.use_gpu else "CPU", run.run_dir)
        start = time.monotonic()
        result = trainer.fit()
        wall_time_s = time.monotonic() - start
    finally:
        if started_local:
            ray.shutdown()

    from yolor_ray import results

    with result.checkpoint.as_directory() as ckpt_dir:
        history = json.loads((Path(ckpt_dir) / HISTORY_FILE).read_text())
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.cfg.dump(str(run.run_dir / "config.py"))
        results.plot_curves(history, run.run_dir / "curves.png")
        if spec.num_samples and spec.data_root is not None:
            results.render_samples(run.cfg, Path(ckpt_dir) / CHECKPOINT_FILE, spec.num_samples,
                                   run.run_dir / "samples.png")
    record = results.build_record(run, history, world_size=spec.num_workers, wall_time_s=wall_time_s,
                                  checkpoint_path=result.checkpoint.path)
    results.write_json_atomic(run.run_dir / "results.json", record)
    return record


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
    if not short:
        return
    if fixed_size:
        raise ClusterTooSmallError(
            "the local Ray cluster can never hold this run: it needs " + "; ".join(short)
            + ". Use fewer --num-workers or --cpus-per-worker, or --address of a larger cluster")
    log.warning("the cluster has too few resources right now (%s); waiting for the autoscaler to add nodes",
                "; ".join(short))


def train_worker(config: dict) -> None:
    """Ray Train's per-worker function: one MMEngine Runner in this process."""
    import ray.train
    import torch
    from mmengine.runner import Runner

    import yolor_ray  # noqa: F401  (registries are per process)

    ctx = ray.train.get_context()
    if config["use_gpu"]:
        # MMEngine only calls set_device when it initialises the group itself.
        torch.cuda.set_device(ctx.get_local_rank())
    else:
        torch.set_num_threads(config["threads"])
    cfg = Config(config["cfg"])
    work_dir = tempfile.mkdtemp(prefix=f"yolor-ray-rank{ctx.get_world_rank()}-")
    cfg.work_dir = work_dir
    cfg.launcher = "pytorch"
    cfg.model_wrapper_cfg = dict(type="CPUFriendlyDDP", broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    cfg.default_hooks.checkpoint = None  # checkpoints go to Ray's storage through the report hook
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="RayTrainReportHook")]
    try:
        Runner.from_cfg(cfg).train()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
