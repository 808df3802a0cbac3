"""A paired plan's pending runs trained through one Tune scheduler (FIFO: no early stopping,
every run to its last epoch), ``at_a_time`` side by side, each with its own resources: a
1-worker run in its Tune actor, any other a TorchTrainer run started from there. A run that
fails does not stop the others: it is recorded with its reason, in one line.

Tune's experiment of runs in their actors is the runs folder itself (each trial's folder its
run's, so Tune's checkpoints land there); of TorchTrainer runs, ``tune/`` beside it.
"""
from __future__ import annotations

import logging

from ray import tune

from yolor_ray.layout import RESULTS_FILE, TUNE_DIR
from yolor_ray.paired.capacity import actor_resources
from yolor_ray.paired.plan import PairedPlan
from yolor_ray.paired.run_lines import LinesPlan
from yolor_ray.paired.summary import outcome_of
from yolor_ray.paired.trial import fit_independent_runs, train_trial
from yolor_ray.records import RunOutcome, RunResults
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec

log = logging.getLogger("yolor_ray")


def run_paired(plan: PairedPlan, at_a_time: int, local: bool) -> list[RunOutcome]:
    """Train the plan's pending runs, then every planned run's outcome (in the plan's order)."""
    errors = train_pending(plan, at_a_time, local) if plan.pending else {}
    return outcomes(plan, errors)


def paired_run(config: dict, runs: dict[str, TrainSpec], inputs: RunInputs | None, in_actor: bool) -> None:
    """Tune's function trainable: the run named ``config['run']``, trained as a sweep's trial is."""
    train_trial(runs[config["run"]], inputs, in_actor)


def train_pending(plan: PairedPlan, at_a_time: int, local: bool) -> dict[str, str]:
    """The pending runs through one Tuner; run name -> why it failed, for those that did."""
    pending, first = plan.pending, plan.first_spec
    if plan.data is not None and not local:
        check_data_on_nodes(DataCheck.of(plan.data), first.scaling.resources_per_worker())
    storage_path, filesystem = plan.storage.ray_storage()
    trainable = tune.with_parameters(paired_run, runs={run.name: run.spec for run in pending}, inputs=plan.inputs,
                                     in_actor=plan.in_actor)
    log.info("training %d run(s), %d at a time", len(pending), min(at_a_time, len(pending)))
    results = fit_independent_runs(trainable, [run.name for run in pending],
                                   resources=actor_resources(first, plan.in_actor),
                                   storage_path=f"{storage_path}/{plan.name}", filesystem=filesystem,
                                   experiment=plan.runs_dir if plan.in_actor else TUNE_DIR, at_a_time=at_a_time,
                                   in_actor=plan.in_actor, max_failures=first.checkpoints.max_failures,
                                   lines=None if first.verbose else lines_plan(plan, at_a_time))
    return {result.config["run"]: reason(result.error) for result in results if result.error is not None}


def lines_plan(plan: PairedPlan, at_a_time: int) -> LinesPlan:
    """What the driver's lines of the pending runs know: each run's epochs (its arm's config's)."""
    epochs = {run.name: plan.configs[run.arm].cfg.train_cfg.max_epochs for run in plan.pending
              if run.arm in plan.configs}
    return LinesPlan(noun="run", total=len(plan.pending), epochs=max(epochs.values(), default=0),
                     location=plan.storage.location(plan.name), epochs_of=epochs, at_a_time=at_a_time)


def reason(error: BaseException) -> str:
    """One line: the run's own exception (inside Ray's wrappers), its type and message."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    last = next((line.strip() for line in reversed(text) if line.strip()), "")
    return f"{type(cause).__name__}: {last}"[:300]


def outcomes(plan: PairedPlan, errors: dict[str, str]) -> list[RunOutcome]:
    """Every planned run's outcome from its results.json in storage, or why it has none."""
    first = plan.first_spec
    runs = open_storage(StorageSpec(plan.runs_uri, first.storage.endpoint))
    found = []
    for run in plan.runs:
        text = runs.read_text(run.name, RESULTS_FILE)
        results = RunResults.from_json(text) if text is not None else None
        found.append(outcome_of(run, runs.location(run.name), results, errors.get(run.name),
                                first.scaling.cpus_per_worker))
    return found
