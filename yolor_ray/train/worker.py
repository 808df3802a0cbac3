"""One worker's training: an MMEngine Runner in this process, reporting each epoch.

:func:`train_worker` is Ray Train's per-worker function (a ``TorchTrainer``'s workers):
Ray has already initialised the process group, so the Runner is built with
``launcher='pytorch'`` and does not init again; MMEngine wraps DDP and shards the data
itself (no ``prepare_model``); a single worker trains unwrapped (``launcher='none'``).
:func:`train_here` is the same training for one rank in the caller's process (a sweep's
1-worker trial): the caller hands it a reporter (``yolor_ray.engine.hooks.Reporter``) and
the checkpoint to resume from, so nothing here imports Tune. Checkpoints go to storage
through the reporter; one that storage refuses for good (a full disk, a denied bucket) is
raised as a ``StorageFaultError``, which ends the run without a retry (``train.failures``).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

import ray.train
import torch
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

import yolor_ray.registrations  # noqa: F401  (registries are per process)
from yolor_ray.config.edits import collect_through_process_group
from yolor_ray.engine.checkpoint import TRUSTED_PREFIX, fetch_checkpoint
from yolor_ray.engine.hooks import EpochReportHook, Reporter
from yolor_ray.engine.run_logs import upload_logs
from yolor_ray.engine.runner import TextOnceConfig, WorkerRunner
from yolor_ray.engine.worker_output import copy_output_to
from yolor_ray.layout import CHECKPOINT_FILE, RUN_STATE_FILE, WORKER_OUTPUT
from yolor_ray.records import RunState
from yolor_ray.storage import StorageFaultError, StorageSpec, open_storage
from yolor_ray.train.devices import assigned_device
from yolor_ray.train.failures import upload_fault
from yolor_ray.train.nodes import DataCheck, gather_topology, raise_if_data_differs, spans_nodes
from yolor_ray.train.trackers import close_unfinished

log = logging.getLogger("yolor_ray")
WORKER_CONFIG = "worker"  # the key of a TorchTrainer's train_loop_config that holds the WorkerConfig


@dataclass(frozen=True)
class WorkerConfig:
    """What every rank trains from: the driver's prepared run, as a worker needs it."""

    cfg: dict  # the run's config, adapted and checked on the driver (train.prepare), as a plain dict
    run_name: str
    storage: StorageSpec  # the run's storage, the endpoint resolved on the driver
    use_gpu: bool = False
    threads: int = 1  # torch threads of a CPU worker (--cpus-per-worker)
    checkpoint_interval: int = 1
    data_check: DataCheck | None = None  # the driver's --data fingerprint, for a node that joins later
    s3_endpoint: str | None = None  # where an s3:// load_from is fetched from
    validate_first: bool = False  # a warm start validates once before its first epoch
    trackers: tuple[dict, ...] = ()  # rank 0's MMEngine vis backends of --tracker
    # The checkpoint folder (under the run) to resume from when Ray has none: the newest whole
    # one, once Ray's record of the run's checkpoints was set aside (``train.checkpoints``).
    resume_from: str | None = None


def runner_config(cfg_dict: dict, name: str, work_dir: str) -> TextOnceConfig:
    """The driver's config of a run (a plain dict) rebuilt in this process for a Runner in
    ``work_dir`` named ``name``-<random>; checkpoints are left to the caller."""
    cfg = TextOnceConfig(cfg_dict)
    if cfg.get("custom_imports"):
        # Config.fromfile imported them on the driver; a config rebuilt from a dict does not.
        import_modules_from_strings(**cfg.custom_imports)
    cfg.work_dir = work_dir
    # MMEngine keeps its logger, message hub and visualizer per process, by name, and hands
    # an existing one back: a run after another in the same process (a reused trial actor)
    # would get the last run's visualizer, writing into that run's deleted work_dir.
    cfg.experiment_name = f"{name}-{uuid.uuid4().hex[:8]}"
    if cfg.get("visualizer") is not None:
        cfg.visualizer.name = cfg.experiment_name
    return cfg


def _fetch_load_from(uri: str, work_dir: str, s3_endpoint: str | None) -> str:
    """``load_from`` through our allow-listed loader (and our own s3:// download)."""
    return TRUSTED_PREFIX + str(fetch_checkpoint(uri, work_dir, s3_endpoint).resolve())


def _sync_buffers_hook(cfg: Config) -> list[dict]:
    """BN statistics averaged over ranks after each training epoch, before validation and the
    checkpoint: the AP reported is the AP of the model stored (not each rank's own BN)."""
    if any(h.get("type") == "SyncBuffersHook" for h in cfg.get("custom_hooks", [])):
        return []
    return [dict(type="SyncBuffersHook")]


class RayTrainReporter:
    """A TorchTrainer worker's epochs, to Ray Train (a barrier over the ranks). ``storage`` and
    ``run_name``: where Ray uploads the checkpoints."""

    def __init__(self, storage: StorageSpec, run_name: str):
        self.storage = storage
        self.run_name = run_name

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        try:
            ray.train.report(metrics, checkpoint=checkpoint)
        except Exception as err:
            fault = upload_fault(err, self.storage, self.run_name)
            if fault is None:
                raise
            raise StorageFaultError(self.storage.uri, fault) from err


def _stored_checkpoint(config: WorkerConfig):
    """``config.resume_from`` as a ``ray.train.Checkpoint`` in the run's storage (None without one)."""
    if config.resume_from is None:
        return None
    path, filesystem = open_storage(config.storage).ray_storage()
    return ray.train.Checkpoint(f"{path}/{config.run_name}/{config.resume_from}", filesystem)


def train_worker(loop_config: dict) -> None:
    """Ray Train's per-worker function (``train_loop_config={WORKER_CONFIG: WorkerConfig}``):
    one MMEngine Runner in this process. What the worker prints (library warnings, evaluation
    tables) is also copied into its log folder."""
    ctx = ray.train.get_context()
    config = loop_config[WORKER_CONFIG]
    # Ray's checkpoint when it has one (a restarted worker group: the latest it registered),
    # else the one the driver found in storage.
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        checkpoint = _stored_checkpoint(config)
    _run_rank(config, RayTrainReporter(config.storage, config.run_name), checkpoint, ctx.get_world_rank(),
              in_train_worker=True)


def train_here(config: WorkerConfig, reporter: Reporter, checkpoint) -> None:
    """One rank's training in this process, no process group: a sweep's 1-worker trial.
    ``checkpoint``: a ``ray.train.Checkpoint`` (or Tune's) to resume from, or None."""
    _run_rank(config, reporter, checkpoint, world_rank=0, in_train_worker=False)


def _run_rank(config: WorkerConfig, reporter: Reporter, checkpoint, world_rank: int, in_train_worker: bool) -> None:
    """One rank in a temporary work_dir; what it prints is also copied into its log folder."""
    work_dir = tempfile.mkdtemp(prefix=f"yolor-ray-rank{world_rank}-")
    try:
        with copy_output_to(Path(work_dir) / WORKER_OUTPUT) as output_file:
            _train(config, reporter, checkpoint, world_rank, in_train_worker, work_dir, output_file)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _train(config: WorkerConfig, reporter: Reporter, checkpoint, world_rank: int, in_train_worker: bool, work_dir: str,
           output_file: Path) -> None:
    if config.data_check is not None:
        # A node that joined after the driver's check (autoscaling) is checked here.
        raise_if_data_differs(config.data_check)
    if config.use_gpu:
        # The GPU Ray assigned this process (MMEngine calls set_device only when it
        # initialises the group itself, and then with the local rank).
        torch.cuda.set_device(assigned_device(True, in_train_worker))
    else:
        torch.set_num_threads(config.threads)
    cfg = runner_config(config.cfg, config.run_name, work_dir)
    topology = gather_topology()
    if spans_nodes(topology):
        # Each node has its own disk: results are gathered through the process group.
        changed = collect_through_process_group(cfg)
        if changed and world_rank == 0:
            log.info("ranks on %d nodes: %s collect results through the process group",
                     len({r["node_id"] for r in topology}), ", ".join(changed))
    # In a TorchTrainer Ray made the process group. One rank (in-process, or a 1-worker
    # TorchTrainer) trains unwrapped: DDP's per-iteration gradient copies into its buckets
    # buy nothing there (bench/ray_overhead).
    distributed = torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
    cfg.launcher = "pytorch" if distributed else "none"
    cfg.model_wrapper_cfg = dict(type="CPUFriendlyDDP", broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    cfg.default_hooks.checkpoint = None  # checkpoints go to Ray's storage through the report hook
    report_hook = dict(reporter=reporter, checkpoint_interval=config.checkpoint_interval, topology=topology,
                       validate_first=config.validate_first)
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            shutil.copy(Path(ckpt_dir) / CHECKPOINT_FILE, work_dir)
            state = RunState.from_json((Path(ckpt_dir) / RUN_STATE_FILE).read_text())
        cfg.load_from = TRUSTED_PREFIX + str(Path(work_dir) / CHECKPOINT_FILE)
        cfg.resume = True
        report_hook.update(history=state.history, restarts=state.restarts + 1, before_training=state.before_training)
    elif cfg.get("load_from"):
        cfg.load_from = _fetch_load_from(cfg.load_from, work_dir, config.s3_endpoint)
    storage = dict(uri=config.storage.uri, endpoint=config.storage.endpoint)
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), *_sync_buffers_hook(cfg),
                        dict(type="StorageLogHook", storage=storage, run_name=config.run_name)]
    if world_rank == 0 and config.trackers:
        cfg.visualizer.vis_backends = [*cfg.visualizer.get("vis_backends", []), *config.trackers]
    runner = None
    try:
        runner = WorkerRunner.from_cfg(cfg)
        # An instance, not a config entry: the reporter is a live object, not a setting.
        runner.register_hook(EpochReportHook(**report_hook))
        runner.train()
    except BaseException as err:
        if runner is not None:
            stopped = isinstance(err, SystemExit)  # Tune stopped this trial at its report
            if not stopped:
                traceback.print_exc()  # into output.log too, on every rank
            close_unfinished(runner.visualizer, stopped)
        raise
    finally:  # upload_logs never raises, so a failure's own traceback stays
        if runner is not None:
            # Every rank, also when training failed (rank 0's are in storage every epoch too).
            upload_logs(runner.log_dir, config.storage, config.run_name, world_rank, output_file=output_file)
