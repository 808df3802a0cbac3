"""Launch a prepared run (``train.prepare``) with Ray Train: the driver side after the checks.

``run_training`` connects to Ray, checks the cluster and the data on every node, writes the
run's manifest and config, starts a ``TorchTrainer`` over :func:`yolor_ray.train.worker.train_worker`,
and finally writes ``results.json``, curves and sample detections next to Ray's run folder;
``train_in_process`` trains a sweep's 1-worker trial in the caller's process instead.

Resume: every (re)start of the worker group asks Ray for the latest checkpoint in
storage, which covers both a restarted worker group (``FailureConfig``) and the same
run name submitted again after its driver died.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import ray
from mmengine.config import Config
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
from ray.train.torch import TorchConfig

from yolor_ray.config.parts import dist_timeout_s
from yolor_ray.engine.hooks import Reporter
from yolor_ray.errors import RunFailedError
from yolor_ray.layout import CHECKPOINT_FILE, RUN_CONFIG, RUN_FILE, SAMPLES_PNG
from yolor_ray.records import RunResults
from yolor_ray.train.checkpoints import remove_partial_checkpoints
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.outputs import render_samples, write_results
from yolor_ray.train.prepare import PreparedRun, prepare_run
from yolor_ray.train.progress import epoch_progress
from yolor_ray.train.ray_cluster import on_private_ray, ray_session, require_fit, shortfalls
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec
from yolor_ray.train.trainer import RunTrainer
from yolor_ray.train.worker import WORKER_CONFIG, WorkerConfig, train_here, train_worker

log = logging.getLogger("yolor_ray")


def check_run_fits(spec: TrainSpec, total: dict[str, float], fixed: bool, local: bool) -> None:
    scaling = spec.scaling
    need, per_worker = scaling.workers_reservation(), scaling.worker_reservation()
    short = shortfalls(need, total)
    described = [f"{need[key]:g} {key + 's' if key in ('CPU', 'GPU') else repr(key)} ({scaling.num_workers} workers x "
                 f"{per_worker[key]:g}) but it has {has:g}" for key, has in short.items()]
    require_fit(not short, "this run", "it needs " + "; ".join(described), fixed, local)


def run_training(spec: TrainSpec, callbacks: tuple = (), inputs: RunInputs | None = None,
                 check_nodes: bool = True, progress: bool = True) -> RunResults:
    """Train (or resume), evaluate and write the run's results; returns the results record.

    ``callbacks``: Ray Train callbacks;
    ``inputs``: what the run's config takes from outside, already looked up (see :func:`prepare_run`);
    ``check_nodes``: compare the data on every node first (a sweep does it once for all trials);
    ``progress``: one line per epoch on stdout (a sweep's trials leave that to Tune).
    """
    run = prepare_run(spec, inputs)
    with ray_session(spec.address, verbose=spec.verbose) as local:
        check_run_fits(spec, ray.cluster_resources(), fixed=local, local=local)
        data_check = DataCheck.of(run.data) if run.data is not None else None
        if data_check is not None and check_nodes and not local:  # a local Ray is this machine alone
            check_data_on_nodes(data_check, spec.scaling.resources_per_worker())
        _write_run_files(run)
        with epoch_progress(run.cfg.train_cfg.max_epochs, enabled=progress,
                            same_machine=on_private_ray()) as progress_callbacks:
            result, wall_time_s = _fit(run, (*callbacks, *progress_callbacks), data_check)
    return _finish(run, Path(result.checkpoint.path).name, wall_time_s,
                   lambda: result.checkpoint.as_directory())


def train_in_process(spec: TrainSpec, reporter: Reporter, checkpoint, latest_checkpoint: Callable[[], str],
                     inputs: RunInputs | None = None) -> RunResults:
    """A 1-worker run trained in this process, no TorchTrainer (a sweep's trial in its Tune actor):
    the caller's ``reporter`` persists each epoch's checkpoint into the run's folder,
    ``checkpoint`` is the one to resume from (or None) and ``latest_checkpoint()`` names
    the run's latest checkpoint folder once training is done. The run's files are those
    of :func:`run_training`: run.json, config.py, checkpoints, logs, results.json."""
    if spec.scaling.num_workers != 1:
        raise ValueError(f"train_in_process trains one worker, not {spec.scaling.num_workers}")
    run = prepare_run(spec, inputs, folder_made=True)
    _write_run_files(run)
    log.info("%s %s in this process; results in %s", "resuming" if checkpoint is not None else "training",
             spec.config.name, run.location)
    start = time.monotonic()
    data_check = DataCheck.of(run.data) if run.data is not None else None
    train_here(_worker_config(run, data_check), reporter, checkpoint)
    wall_time_s = time.monotonic() - start
    folder = latest_checkpoint()
    path, filesystem = run.storage.ray_storage()
    stored = Checkpoint(f"{path}/{run.name}/{folder}", filesystem)
    return _finish(run, folder, wall_time_s, stored.as_directory)


def _write_run_files(run: PreparedRun) -> None:
    """run.json and config.py, before training (a resumed run has them)."""
    if not run.resuming:
        run.storage.write_bytes(run.config_text.encode(), run.name, RUN_CONFIG)
        run.storage.write_bytes(run.manifest.to_json().encode(), run.name, RUN_FILE)


def _finish(run: PreparedRun, checkpoint_folder: str, wall_time_s: float, checkpoint_directory) -> RunResults:
    """Samples, curves and results.json from the run's latest checkpoint.
    ``checkpoint_directory()``: a context manager giving that checkpoint as a local folder."""
    samples = {}
    if run.spec.num_samples and run.spec.data_root is not None:
        with checkpoint_directory() as ckpt_dir:
            samples[SAMPLES_PNG] = render_samples(run.cfg, Path(ckpt_dir) / CHECKPOINT_FILE, run.spec.num_samples)
    return write_results(run.storage, run.name, run.manifest, checkpoint_folder, wall_time_s,
                         extra_artifacts=samples)


def _worker_config(run: PreparedRun, data_check: DataCheck | None) -> WorkerConfig:
    """What each worker trains from."""
    spec = run.spec
    return WorkerConfig(cfg=run.cfg.to_dict(), run_name=run.name, storage=run.storage.portable_spec(),
                        use_gpu=spec.scaling.use_gpu, threads=spec.scaling.cpus_per_worker,
                        checkpoint_interval=spec.checkpoints.interval, data_check=data_check,
                        s3_endpoint=spec.storage.endpoint, validate_first=spec.warm_start is not None,
                        trackers=tuple(run.trackers))


def _fit(run: PreparedRun, callbacks: tuple, data_check: DataCheck | None):
    """The TorchTrainer of a run, fitted; (Ray's result, seconds)."""
    spec = run.spec
    storage_path, storage_filesystem = run.storage.ray_storage()
    trainer = RunTrainer(
        train_worker,
        train_loop_config={WORKER_CONFIG: _worker_config(run, data_check)},
        torch_config=_torch_config(run.cfg),
        scaling_config=ScalingConfig(num_workers=spec.scaling.num_workers, use_gpu=spec.scaling.use_gpu,
                                     resources_per_worker=spec.scaling.resources_per_worker()),
        run_config=RunConfig(
            name=run.name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            # The best checkpoints (by bbox mAP; a sweep's trial: by its metric), plus the latest
            # (Ray always keeps it).
            checkpoint_config=CheckpointConfig(num_to_keep=spec.checkpoints.keep,
                                               checkpoint_score_attribute=spec.checkpoints.metric,
                                               checkpoint_score_order=spec.checkpoints.mode),
            failure_config=FailureConfig(max_failures=spec.checkpoints.max_failures),
            callbacks=list(callbacks),
        ),
        private_ray=on_private_ray(),
    )
    log.info("%s %s on %d %s worker(s); results in %s", "resuming" if run.resuming else "training",
             spec.config.name, spec.scaling.num_workers, "GPU" if spec.scaling.use_gpu else "CPU", run.location)
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
    return result, time.monotonic() - start


def _torch_config(cfg: Config) -> TorchConfig:
    """Ray sets up the process group, so MMEngine never reads ``env_cfg.dist_cfg.timeout``: Ray gets it."""
    timeout_s = dist_timeout_s(cfg)
    return TorchConfig() if timeout_s is None else TorchConfig(timeout_s=timeout_s)
