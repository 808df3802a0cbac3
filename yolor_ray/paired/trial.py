"""One training run inside a Tune trial, and a Tuner of independent runs.

A run ``in_actor`` (1 worker) trains in its own Tune actor
(:func:`yolor_ray.train.driver.train_in_process`, reporting to Tune through
:class:`TuneReporter`); any other is a ``TorchTrainer`` run started from that actor, its
reports passed on by Tune's report callback. Both leave the same run folder.
"""
from __future__ import annotations

import os

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import FIFOScheduler

from yolor_ray.paired.checkpoints import latest_stored_checkpoint
from yolor_ray.paired.faults import Job, StorageFaultsEndTheJob, fit_ending_on_storage_faults
from yolor_ray.paired.progress import run_config_output, tune_output
from yolor_ray.paired.run_lines import LinesPlan
from yolor_ray.storage import StorageFaultError, StorageSpec, open_storage
from yolor_ray.train.driver import run_training, train_in_process
from yolor_ray.train.failures import upload_fault
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec

# Runs in their actors reuse them (Tune's reuse_actors): torch and mmdet are imported once per
# actor, not once per run. Before the next run starts in an actor, Tune waits this long for
# the previous one's training thread to end: a stopped trial leaves through its report
# (SystemExit) and uploads its logs on the way out. Ray's default, 2 s, can cut an upload
# short, and a wait that runs out fails the next run.
STOPPED_TRIAL_WAIT_ENV, STOPPED_TRIAL_WAIT_S = "TUNE_FUNCTION_THREAD_TIMEOUT_S", "120"


class TuneReporter:
    """A run's epochs in its Tune actor, to Tune: its scheduler sees every epoch, and each
    checkpoint is persisted into the trial's folder (= its run folder) as Tune's own.
    ``storage``: the runs' folder, Tune's experiment. An upload that storage refuses for good
    is raised as a ``StorageFaultError``, which ends the job (:mod:`.faults`): the error Tune
    pickles for the driver keeps no chained cause, so the fault is named here."""

    def __init__(self, storage: StorageSpec):
        self.storage = storage

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        try:
            tune.report(metrics, checkpoint=checkpoint)
        except Exception as err:
            fault = upload_fault(err, self.storage)  # Ray's marker: at the top of Tune's experiment
            if fault is None:
                raise
            raise StorageFaultError(self.storage.uri, fault) from err


def trial_folder(trial) -> str:
    """Tune's folder of a sweep's trial in its actor, in the sweep's runs/ (its Tune experiment
    there): the trial's run folder, so Tune's checkpoints land where a TorchTrainer run's do,
    beside run.json and results.json."""
    return trial.trial_id


def resume_point(storage_spec: StorageSpec, name: str):
    """What a run in its actor continues from: Tune's latest checkpoint of it, else (a driver
    that died before Tune saved its state) the furthest one in its run folder."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        return checkpoint
    folder = latest_stored_checkpoint(storage_spec, name)
    if folder is None:
        return None
    path, filesystem = open_storage(storage_spec).ray_storage()
    return tune.Checkpoint(f"{path}/{name}/{folder}", filesystem)


def latest_checkpoint_of(storage_spec: StorageSpec, name: str) -> str:
    folder = latest_stored_checkpoint(storage_spec, name)
    if folder is None:
        raise RuntimeError(f"trial {name} trained but no checkpoint of it is in storage")
    return folder


def train_trial(spec: TrainSpec, inputs: RunInputs | None, in_actor: bool) -> None:
    """One training run from inside a Tune trial (a sweep's, a confirmation's, a reproduction's),
    reporting each epoch to Tune: in this actor (``in_actor``, 1 worker), else as a TorchTrainer run."""
    if in_actor:
        os.environ.setdefault(STOPPED_TRIAL_WAIT_ENV, STOPPED_TRIAL_WAIT_S)
        storage_spec = spec.storage
        train_in_process(spec, TuneReporter(storage_spec), resume_point(storage_spec, spec.name),
                         latest_checkpoint=lambda: latest_checkpoint_of(storage_spec, spec.name), inputs=inputs)
        return
    run_training(spec, callbacks=(TuneReportCallback(),), inputs=inputs,
                 check_nodes=False,  # the driver checked them for every run
                 progress=False)  # the driver's lines of the trials are the progress (paired.progress)


def fit_independent_runs(trainable, names: list[str], *, resources: dict, storage_path: str, filesystem,
                         experiment: str, at_a_time: int, in_actor: bool, max_failures: int, job: Job,
                         lines: LinesPlan | None = None):
    """Independent training runs through one Tuner (a confirmation's, a reproduction's): FIFO,
    no early stopping, every run to its last epoch, ``at_a_time`` side by side. Each trial's
    config is ``{"run": name}``; an ``in_actor`` run's Tune folder is its run folder, ``name``,
    so Tune's checkpoints land there. The driver prints each run's ``lines``
    (:mod:`.progress`; None: Tune's own output, ``--verbose``). A failure is retried up to
    ``max_failures``, but for a storage fault, which ends the whole ``job`` in one line
    (:mod:`.faults`). Returns Tune's results."""
    folders = {"trial_dirname_creator": _run_folder} if in_actor else {}
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources), param_space={"run": tune.grid_search(names)},
        tune_config=tune.TuneConfig(scheduler=FIFOScheduler(), max_concurrent_trials=at_a_time,
                                    reuse_actors=in_actor, **folders),
        run_config=tune.RunConfig(name=experiment, storage_path=storage_path, storage_filesystem=filesystem,
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  **run_config_output(lines, verbose=lines is None, name_key="run",
                                                      before=(StorageFaultsEndTheJob(job),))))
    with tune_output(verbose=lines is None):
        return fit_ending_on_storage_faults(tuner)


def _run_folder(trial) -> str:
    return trial.config["run"]
