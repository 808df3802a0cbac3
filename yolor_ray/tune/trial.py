"""One trial of a sweep: its run settings, what it asks of the cluster, and Tune's trainable.

A 1-worker trial trains in its own Tune actor (:func:`yolor_ray.train.driver.train_in_process`,
reporting to Tune through :class:`TuneReporter`); a trial of more workers is a
``TorchTrainer`` run started from that actor, its reports passed on by Tune's report
callback. Both leave the same run folder, ``runs/TRIAL`` (docs/tune.md).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Callable

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import FIFOScheduler

from yolor_ray.data.coco import CocoFolder
from yolor_ray.layout import CHECKPOINT_DIR_PREFIX, CHECKPOINT_FILE, RUN_STATE_FILE
from yolor_ray.records import RunState
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.driver import run_training, train_in_process
from yolor_ray.train.ray_cluster import HEAD_RESOURCE
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.variant import implicit_of

log = logging.getLogger("yolor_ray")
LR_KEY = "optim_wrapper.optimizer.lr"
# The actor of a trial that drives a TorchTrainer: one CPU, on the head (see HEAD_RESOURCE).
TRIAL_ACTOR = {"CPU": 1, HEAD_RESOURCE: 0.001}
# In-process trials reuse their actors (Tune's reuse_actors): torch and mmdet are imported
# once per actor, not once per trial. Before the next trial starts in an actor, Tune waits
# this long for the previous one's training thread to end: a stopped trial leaves through
# its report (SystemExit) and uploads its logs on the way out. Ray's default, 2 s, can cut
# an upload short, and a wait that runs out fails the next trial.
STOPPED_TRIAL_WAIT_ENV, STOPPED_TRIAL_WAIT_S = "TUNE_FUNCTION_THREAD_TIMEOUT_S", "120"


def in_process(trial_spec: TrainSpec, trainer_trials: bool = False) -> bool:
    """A trial of one worker trains in its Tune actor: no TorchTrainer, no helper actors
    (``trainer_trials``: every trial a TorchTrainer run all the same)."""
    return trial_spec.scaling.num_workers == 1 and not trainer_trials


def trial_for(trial_spec: TrainSpec, variant: dict, base_implicit: dict, name: str) -> TrainSpec:
    """The run settings of one trial: the variant's implicit settings (and LR) over the config."""
    implicit_variant = {k: v for k, v in variant.items() if k != "lr"}
    options = dict(trial_spec.cfg_options)
    if "lr" in variant:
        options[LR_KEY] = float(variant["lr"])
    return dataclasses.replace(trial_spec, name=name, cfg_options=options,
                               implicit=implicit_of(implicit_variant, base_implicit))


def trial_resources(trial_spec: TrainSpec, cheap: bool) -> dict[str, float]:
    """What one trial needs from the cluster: its worker alone when it trains in its own
    actor (``cheap``), else its own CPU on the head plus its trainer's workers."""
    need = trial_spec.scaling.workers_reservation()
    if not cheap:
        need["CPU"] += TRIAL_ACTOR["CPU"]
    return need


def actor_resources(trial_spec: TrainSpec, cheap: bool) -> dict[str, float]:
    """What Tune reserves for the trial's own actor: the worker itself when it trains there."""
    return trial_spec.scaling.workers_reservation() if cheap else dict(TRIAL_ACTOR)


def trial_folder(trial) -> str:
    """Tune's folder of an in-process trial, in the sweep's runs/ (its Tune experiment there):
    the trial's run folder, so Tune's checkpoints land where a TorchTrainer run's do, beside
    run.json and results.json."""
    return trial.trial_id


class TuneReporter:
    """An in-process trial's epochs, to Tune: its scheduler sees every epoch, and each
    checkpoint is persisted into the trial's folder (= its run folder) as Tune's own."""

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=checkpoint)


def stored_checkpoints(storage, name: str) -> tuple[list[tuple[int, str]], list[str]]:
    """The checkpoint folders Tune persisted for run ``name`` (checkpoint_000000, ...), read
    only: (epochs run, folder) of each whole one, and the folders whose upload was cut short
    (a killed trial: the checkpoint file missing or shorter than its run state says)."""
    whole, partial = [], []
    for folder in storage.list_dirs(name):
        if not folder.startswith(CHECKPOINT_DIR_PREFIX):
            continue
        text = storage.read_text(name, folder, RUN_STATE_FILE)
        state = RunState.from_json(text) if text is not None else None
        size = storage.size(name, folder, CHECKPOINT_FILE)
        if state is None or size is None or state.checkpoint_bytes not in (None, size):
            partial.append(folder)
        else:
            whole.append((state.epochs_run, folder))
    return whole, partial


def latest_stored_checkpoint(storage_spec: StorageSpec, name: str) -> str | None:
    """The whole checkpoint folder of run ``name`` that got furthest (by its run state's
    epochs); None when there is none. By the run state, not the name: a trial resumed from
    storage numbers its folders from 0 again. Partial folders are removed, so what stays is
    whole or absent."""
    storage = open_storage(storage_spec)
    whole, partial = stored_checkpoints(storage, name)
    for folder in partial:
        log.warning("removing partial checkpoint %s (its upload did not finish)", storage.location(name, folder))
        storage.delete_tree(name, folder)
    furthest = None
    for epochs, folder in whole:  # among equals the last listed, as Tune numbers them
        if furthest is None or epochs >= furthest[0]:
            furthest = (epochs, folder)
    return furthest[1] if furthest else None


def resume_point(storage_spec: StorageSpec, name: str):
    """What an in-process trial continues from: Tune's latest checkpoint of it, else (a sweep
    whose driver died before Tune saved its state) the furthest one in its run folder."""
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


def sweep_trial(variant: dict, trial_spec: TrainSpec, base_implicit: dict, data: CocoFolder | None = None,
                cheap: bool = True) -> None:
    """Tune's function trainable: one trial = one training run named by the trial id;
    ``cheap``: trained here (1 worker), else a TorchTrainer run."""
    name = tune.get_context().get_trial_id()
    train_trial(trial_for(trial_spec, variant, base_implicit, name), data, cheap)


def train_trial(spec: TrainSpec, data: CocoFolder | None, cheap: bool) -> None:
    """One training run from inside a Tune trial (a sweep's or a confirmation's), reporting
    each epoch to Tune: in this process (``cheap``, 1 worker), else as a TorchTrainer run."""
    if cheap:
        os.environ.setdefault(STOPPED_TRIAL_WAIT_ENV, STOPPED_TRIAL_WAIT_S)
        storage_spec = spec.storage
        train_in_process(spec, TuneReporter(), resume_point(storage_spec, spec.name),
                         latest_checkpoint=lambda: latest_checkpoint_of(storage_spec, spec.name), data=data)
        return
    run_training(spec, callbacks=(TuneReportCallback(),), data=data,
                 check_nodes=False,  # the sweep's driver checked them for every trial
                 progress=False)  # Tune's own status table is the sweep's progress


def fit_independent_runs(trainable, items: list, folder_of: Callable, *, resources: dict, storage_path: str,
                         filesystem, experiment: str, at_a_time: int, cheap: bool, max_failures: int):
    """Independent training runs through one Tuner (a confirmation's, a reproduction's): FIFO,
    no early stopping, every run to its last epoch, ``at_a_time`` side by side. Each trial's
    config is ``{"run": item}``; an in-process (``cheap``) run's Tune folder is its run folder,
    ``folder_of(item)``, so Tune's checkpoints land there. Returns Tune's results."""
    folders = {"trial_dirname_creator": functools.partial(_folder_of_trial, folder_of)} if cheap else {}
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources), param_space={"run": tune.grid_search(items)},
        tune_config=tune.TuneConfig(scheduler=FIFOScheduler(), max_concurrent_trials=at_a_time, reuse_actors=cheap,
                                    **folders),
        run_config=tune.RunConfig(name=experiment, storage_path=storage_path, storage_filesystem=filesystem,
                                  verbose=1, failure_config=tune.FailureConfig(max_failures=max_failures)))
    return tuner.fit()


def _folder_of_trial(folder_of: Callable, trial) -> str:
    return folder_of(trial.config["run"])
