"""Launch a prepared run (``train.prepare``) with Ray Train: the driver side after the checks.

``run_training`` connects to Ray, checks the cluster and the data on every node, writes the
run's manifest and config, starts a ``TorchTrainer`` over :func:`yolor_ray.train.worker.train_worker`,
and finally writes ``results.json``, curves and sample detections next to Ray's run folder;
``train_in_process`` trains a sweep's 1-worker trial in the caller's process instead.

Resume: every (re)start of the worker group asks Ray for the latest checkpoint in
storage, which covers both a restarted worker group (``FailureConfig``) and the same
run name submitted again after its driver died. When Ray's record of the checkpoints does
not read (a disk that filled up while Ray rewrote it), it is set aside and the run resumes
from its newest whole checkpoint (``train.checkpoints``).

Failures: a storage fault (a full disk, a quota, a read-only folder, a denied or deleted
bucket; ``train.failures``) ends the run at once, in one line that names the storage, the
error, the last whole checkpoint and the command that resumes; any other failure is retried
up to ``--max-failures`` and then reported with the workers' errors.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
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
from yolor_ray.storage import StorageFaultError, storage_fault
from yolor_ray.train.checkpoints import remove_partial_checkpoints, resume_checkpoint, set_aside_unreadable_record
from yolor_ray.train.failures import run_storage_fault
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
    resume_from = _resume_point(run) if run.resuming else None
    with ray_session(spec.address, verbose=spec.verbose) as local:
        check_run_fits(spec, ray.cluster_resources(), fixed=local, local=local)
        data_check = DataCheck.of(run.data) if run.data is not None else None
        if data_check is not None and check_nodes and not local:  # a local Ray is this machine alone
            check_data_on_nodes(data_check, spec.scaling.resources_per_worker())
        _write_run_files(run)
        with epoch_progress(run.cfg.train_cfg.max_epochs, enabled=progress,
                            same_machine=on_private_ray()) as progress_callbacks:
            result, wall_time_s = _fit(run, (*callbacks, *progress_callbacks), data_check, resume_from)
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
        with _storage_faults_end_the_run(run):
            run.storage.write_bytes(run.config_text.encode(), run.name, RUN_CONFIG)
            run.storage.write_bytes(run.manifest.to_json().encode(), run.name, RUN_FILE)


def _resume_point(run: PreparedRun) -> str | None:
    """The checkpoint folder a resumed run continues from where Ray has none registered (the
    workers ask Ray first): the newest whole one. Ray's record of the run's checkpoints is set
    aside first when it does not read, in one warning line."""
    set_aside = set_aside_unreadable_record(run.storage, run.name)
    kept = resume_checkpoint(run.storage, run.name)
    if set_aside is not None:
        log.warning("run %s: Ray's record of its checkpoints does not read (%s); kept as %s, and the run resumes "
                    "from %s", run.location, set_aside.reason, set_aside.kept_as,
                    f"its newest whole checkpoint, {kept.folder} (epoch {kept.epochs})" if kept
                    else "its first epoch (no whole checkpoint in storage)")
    return kept.folder if kept else None


@contextmanager
def _storage_faults_end_the_run(run: PreparedRun):
    """Our own writes to storage: a storage fault becomes the run's one line (:func:`_run_fault`)."""
    try:
        yield
    except Exception as err:
        fault = storage_fault(err)
        if fault is None:
            raise
        raise _run_fault(run, fault) from None


def _run_fault(run: PreparedRun, fault: str, removed: list[str] | None = None) -> StorageFaultError:
    """The run's storage fault, its message the one line (:func:`_fault_line`): still a storage
    fault to whoever started the run (a Tune trial's error tells the job's driver so)."""
    return StorageFaultError(run.storage.location(), fault, _fault_line(run, fault, removed))


def _fault_line(run: PreparedRun, fault: str, removed: list[str] | None = None) -> str:
    """One line: the storage, its error, the last whole checkpoint kept, the command that resumes."""
    try:
        kept = resume_checkpoint(run.storage, run.name)
        checkpoint = f"its last whole checkpoint is {kept.folder} (epoch {kept.epochs})" if kept \
            else "it has no whole checkpoint"
    except Exception as err:  # the storage cannot be read either
        kept, checkpoint = None, f"its checkpoints cannot be listed now ({type(err).__name__})"
    partial = f"; removed what Ray had not registered: {', '.join(removed)}" if removed else ""
    resumes = "resumes from it" if kept else "starts it again"
    return (f"run {run.location!r} stopped: a write to its storage {run.storage.location()!r} failed with "
            f"{' '.join(fault.split())}, which retrying cannot fix{partial}; {checkpoint}; once that is fixed, "
            f"the same command with --name {run.name} {resumes}")


def _finish(run: PreparedRun, checkpoint_folder: str, wall_time_s: float, checkpoint_directory) -> RunResults:
    """Samples, curves and results.json from the run's latest checkpoint.
    ``checkpoint_directory()``: a context manager giving that checkpoint as a local folder."""
    samples = {}
    if run.spec.num_samples and run.spec.data_root is not None:
        with checkpoint_directory() as ckpt_dir:
            samples[SAMPLES_PNG] = render_samples(run.cfg, Path(ckpt_dir) / CHECKPOINT_FILE, run.spec.num_samples)
    with _storage_faults_end_the_run(run):
        return write_results(run.storage, run.name, run.manifest, checkpoint_folder, wall_time_s,
                             extra_artifacts=samples)


def _worker_config(run: PreparedRun, data_check: DataCheck | None, resume_from: str | None = None) -> WorkerConfig:
    """What each worker trains from."""
    spec = run.spec
    return WorkerConfig(cfg=run.cfg.to_dict(), run_name=run.name, storage=run.storage.portable_spec(),
                        use_gpu=spec.scaling.use_gpu, threads=spec.scaling.cpus_per_worker,
                        checkpoint_interval=spec.checkpoints.interval, data_check=data_check,
                        s3_endpoint=spec.storage.endpoint, validate_first=spec.warm_start is not None,
                        trackers=tuple(run.trackers), resume_from=resume_from)


def _fit(run: PreparedRun, callbacks: tuple, data_check: DataCheck | None, resume_from: str | None = None):
    """The TorchTrainer of a run, fitted; (Ray's result, seconds). ``resume_from``: the checkpoint
    folder to resume from while Ray has none registered."""
    spec = run.spec
    storage_path, storage_filesystem = run.storage.ray_storage()
    trainer = RunTrainer(
        train_worker,
        train_loop_config={WORKER_CONFIG: _worker_config(run, data_check, resume_from)},
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
        fault = run_storage_fault(err)
        removed = _remove_partial_checkpoints(run, quiet=fault is not None)
        if fault is not None:  # Ray did not retry it (train.failures): one line, no worker's traceback
            raise _run_fault(run, fault, removed) from None
        raise RunFailedError(f"run {run.location!r} failed: {err}\nIts registered checkpoints stay in storage: "
                             f"the same command with --name {run.name} resumes from the last one") from None
    except BaseException:
        _remove_partial_checkpoints(run)
        raise
    _remove_partial_checkpoints(run)
    return result, time.monotonic() - start


def _remove_partial_checkpoints(run: PreparedRun, quiet: bool = False) -> list[str]:
    """:func:`remove_partial_checkpoints` (``quiet``: not logged, the caller names them in its one
    line), never raising: storage still down leaves them for the next run of this name."""
    try:
        return remove_partial_checkpoints(run.storage, run.name, quiet=quiet)
    except Exception as err:
        if not quiet:
            log.warning("could not check %s for partial checkpoints: %s", run.location, err)
        return []


def _torch_config(cfg: Config) -> TorchConfig:
    """Ray sets up the process group, so MMEngine never reads ``env_cfg.dist_cfg.timeout``: Ray gets it."""
    timeout_s = dist_timeout_s(cfg)
    return TorchConfig() if timeout_s is None else TorchConfig(timeout_s=timeout_s)
