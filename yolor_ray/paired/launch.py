"""A paired plan's pending runs trained through one Tune scheduler (FIFO: no early stopping,
every run to its last epoch), ``at_a_time`` side by side, each with its own resources: a
1-worker run in its Tune actor, any other a TorchTrainer run started from there. A run that
fails does not stop the others: it is recorded with its reason, in one line. A storage fault
(a full disk, a denied bucket) does: every run writes to that storage (:mod:`.faults`).

Tune's experiment of runs in their actors is the runs folder itself (each trial's folder its
run's, so Tune's checkpoints land there); of TorchTrainer runs, ``tune/`` beside it.

Run to a resolution (:mod:`.stages`), the plan is the pilot; the seeds its outcomes ask for
beyond it are a second pass of the same kind, all comparisons' in one (:func:`run_in_stages`).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, ContextManager

from ray import tune

from yolor_ray.layout import RESULTS_FILE, TUNE_DIR
from yolor_ray.paired.capacity import actor_resources
from yolor_ray.paired.faults import Job
from yolor_ray.paired.plan import PairedPlan, extend_plan
from yolor_ray.paired.run_lines import LinesPlan
from yolor_ray.paired.stages import Comparison, FixedSeeds
from yolor_ray.paired.summary import outcome_of
from yolor_ray.paired.trial import fit_independent_runs, train_trial
from yolor_ray.records import RunOutcome, RunResults
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec

log = logging.getLogger("yolor_ray")


def run_paired(plan: PairedPlan, at_a_time: int) -> list[RunOutcome]:
    """Train the plan's pending runs, then every planned run's outcome (in the plan's order)."""
    errors = train_pending(plan, at_a_time) if plan.pending else {}
    return outcomes(plan, errors)


def run_in_stages(plan: PairedPlan, seeding: FixedSeeds, comparisons: list[Comparison],
                  session: Callable[[], ContextManager[bool]], at_a_time: Callable[[bool], int],
                  can_start: Callable[[], None] = lambda: None) -> list[RunOutcome]:
    """Train the plan's pending runs, then those of the seeds ``seeding`` asks for beyond them
    (none for fixed seeds); every planned run's outcome, the plan's first. Ray is started
    (``session()``, which yields whether it is a local Ray) at the first pass with a run to
    train, and only then: a reproduction that has it all trains nothing and starts no Ray.
    ``can_start`` is called once the cluster is found to hold a run and the nodes to have the
    data: what a job writes once it can start (a job that never could writes nothing)."""
    with contextlib.ExitStack() as stack:
        local: list[bool] = []

        def train(stage: PairedPlan) -> list[RunOutcome]:
            if not stage.pending:
                return outcomes(stage, {})
            first = not local
            if first:
                local.append(stack.enter_context(session()))
            fits = at_a_time(local[0])
            if first:
                check_data(plan, local[0])
                can_start()
            return run_paired(stage, fits)

        found = train(plan)
        more = seeding.second_stage(found, comparisons)
        if not more:
            return found
        second = extend_plan(plan, more)
        log.info("second stage (seeds on demand): %d run(s) beyond the pilot's %d seed(s), %d to train, %d reused",
                 len(second.runs), len(plan.seeds), len(second.pending), len(second.runs) - len(second.pending))
        return found + train(second)


def check_data(plan: PairedPlan, local: bool) -> None:
    """On a cluster of several nodes, every node a run may land on has the data (a one-line error)."""
    if plan.data is not None and not local:
        check_data_on_nodes(DataCheck.of(plan.data), plan.first_spec.scaling.resources_per_worker())


def paired_run(config: dict, runs: dict[str, TrainSpec], inputs: RunInputs | None, in_actor: bool) -> None:
    """Tune's function trainable: the run named ``config['run']``, trained as a sweep's trial is."""
    train_trial(runs[config["run"]], inputs, in_actor)


def train_pending(plan: PairedPlan, at_a_time: int) -> dict[str, str]:
    """The pending runs through one Tuner; run name -> why it failed, for those that did."""
    pending, first = plan.pending, plan.first_spec
    storage_path, filesystem = plan.storage.ray_storage()
    trainable = tune.with_parameters(paired_run, runs={run.name: run.spec for run in pending}, inputs=plan.inputs,
                                     in_actor=plan.in_actor)
    log.info("training %d run(s), %d at a time", len(pending), min(at_a_time, len(pending)))
    results = fit_independent_runs(trainable, [run.name for run in pending],
                                   resources=actor_resources(first, plan.in_actor),
                                   storage_path=f"{storage_path}/{plan.name}", filesystem=filesystem,
                                   experiment=plan.runs_dir if plan.in_actor else TUNE_DIR, at_a_time=at_a_time,
                                   in_actor=plan.in_actor, max_failures=first.checkpoints.max_failures,
                                   job=Job(plan.kind, plan.storage.location(plan.name), plan.name,
                                           StorageSpec(plan.runs_uri, first.storage.endpoint), name_key="run"),
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
    if not plan.runs:
        return []
    first = plan.first_spec
    runs = open_storage(StorageSpec(plan.runs_uri, first.storage.endpoint))
    found = []
    for run in plan.runs:
        text = runs.read_text(run.name, RESULTS_FILE)
        results = RunResults.from_json(text) if text is not None else None
        found.append(outcome_of(run, runs.location(run.name), results, errors.get(run.name),
                                first.scaling.cpus_per_worker))
    return found
