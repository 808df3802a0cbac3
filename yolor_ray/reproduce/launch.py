"""Train a reproduction's runs and write its table.

The runs that are not done go through one Tune scheduler (FIFO: no early stopping, every run
to its last epoch), as many at a time as the cluster holds, each with its own resources: a
1-worker run trains in its Tune actor, a larger one is a TorchTrainer run started from there
(``tune.trial.train_trial``, as a sweep's trials). A run that fails does not stop the
others. Run again with the same name: done runs are reused, unfinished ones continue from
their last checkpoint, failed ones start again.
"""
from __future__ import annotations

import logging

from ray import tune

from yolor_ray.data.coco import CocoFolder
from yolor_ray.layout import REPRODUCE_PLAN, REPRODUCTION_FILE, REPRODUCTION_MD, RESULTS_FILE, RUNS_DIR
from yolor_ray.records import Reproduction, RunResults
from yolor_ray.reproduce.plan import DONE, PlannedRun, ReproducePlan, prepare_reproduction
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.reproduce.summary import RunOutcome, summarize
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.table import format_reproduction
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.ray_cluster import ray_session
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.sweep import trials_at_a_time
from yolor_ray.tune.trial import actor_resources, fit_independent_runs, train_trial

log = logging.getLogger("yolor_ray")
TUNE_DIR = "tune"  # Tune's experiment of TorchTrainer runs (1-worker runs' is runs/, their own folders)


def run_reproduction(spec: ReproduceSpec) -> Reproduction:
    """Train what is missing, then write reproduce.json and reproduce.md; returns the record
    (its runs say which failed and why)."""
    plan = prepare_reproduction(spec)
    plan.storage.write_bytes(plan.manifest.to_json().encode(), plan.name, REPRODUCE_PLAN)
    pending = plan.pending
    log.info("reproduction %s: %d run(s), %d to train (%d continue from a checkpoint), %d reused",
             plan.location, len(plan.runs), len(pending), sum(r.checkpointed for r in pending),
             len(plan.runs) - len(pending))
    errors = {}
    if pending:
        with ray_session(spec.train.address, verbose=spec.train.verbose) as local:
            errors = _train(plan, pending, runs_at_a_time(plan, local), local)
    return write_reproduction(plan, errors)


def runs_at_a_time(plan: ReproducePlan, local: bool) -> int:
    """How many runs train side by side on this cluster (a one-line error when not one fits)."""
    spec = plan.spec
    return trials_at_a_time(spec.train, plan.in_process, spec.max_concurrent, spec.fixed_cluster, local, what="run")


def reproduce_run(config: dict, runs: dict[str, TrainSpec], data: CocoFolder | None, cheap: bool) -> None:
    """Tune's function trainable: the run named ``config['run']``, trained as a sweep's trial is."""
    train_trial(runs[config["run"]], data, cheap)


def _train(plan: ReproducePlan, pending: tuple[PlannedRun, ...], at_a_time: int, local: bool) -> dict[str, str]:
    """The pending runs through one Tuner; run name -> why it failed, for those that did."""
    train = plan.spec.train
    if plan.data is not None and not local:
        check_data_on_nodes(DataCheck.of(plan.data), train.scaling.resources_per_worker())
    storage_path, filesystem = plan.storage.ray_storage()
    cheap = plan.in_process
    trainable = tune.with_parameters(reproduce_run, runs={run.name: run.spec for run in pending}, data=plan.data,
                                     cheap=cheap)
    log.info("training %d run(s), %d at a time", len(pending), min(at_a_time, len(pending)))
    # 1-worker runs: Tune's experiment is runs/, each trial's folder its run's (Tune's checkpoints land there).
    results = fit_independent_runs(trainable, [run.name for run in pending], str,
                                   resources=actor_resources(train, cheap), storage_path=f"{storage_path}/{plan.name}",
                                   filesystem=filesystem, experiment=RUNS_DIR if cheap else TUNE_DIR,
                                   at_a_time=at_a_time, cheap=cheap, max_failures=train.checkpoints.max_failures)
    return {result.config["run"]: _reason(result.error) for result in results if result.error is not None}


def _reason(error: BaseException) -> str:
    """One line: the run's own exception (inside Ray's wrappers), its type and message."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    last = next((line.strip() for line in reversed(text) if line.strip()), "")
    return f"{type(cause).__name__}: {last}"[:300]


def write_reproduction(plan: ReproducePlan, errors: dict[str, str]) -> Reproduction:
    """reproduce.json and reproduce.md from every planned run's results in storage."""
    runs = open_storage(StorageSpec(plan.runs_uri, plan.spec.train.storage.endpoint))
    outcomes = []
    for run in plan.runs:
        text = runs.read_text(run.name, RESULTS_FILE)
        results = RunResults.from_json(text) if text is not None else None
        error = None if results is not None else errors.get(run.name, "not run" if run.state != DONE else None)
        outcomes.append(RunOutcome(run, runs.location(run.name), results, error))
    reproduction = summarize(plan.spec, plan.name, plan.location, plan.manifest.settings, outcomes)
    plan.storage.write_bytes(reproduction.to_json().encode(), plan.name, REPRODUCTION_FILE)
    plan.storage.write_bytes(format_reproduction(reproduction).encode(), plan.name, REPRODUCTION_MD)
    return reproduction
