"""Train a reproduction's runs and write its table.

The runs that are not done are a paired plan's pending runs (:mod:`yolor_ray.paired`): one
Tune scheduler (FIFO: no early stopping, every run to its last epoch), as many at a time as the
cluster holds, each with its own resources, a 1-worker run in its Tune actor, a larger one a
TorchTrainer run started from there. A run that fails does not stop the others. Run again
with the same name: done runs are reused, unfinished ones continue from their last
checkpoint, failed ones start again. With ``--resolution`` the seeds are the pilot, and the
seeds each row needs beyond it a second pass (``paired.launch.run_in_stages``).
"""
from __future__ import annotations

import logging

from yolor_ray.forest import forest_png, reproduction_forest
from yolor_ray.layout import REPRODUCE_PLAN, REPRODUCTION_FILE, REPRODUCTION_MD, REPRODUCTION_PNG
from yolor_ray.paired.capacity import trials_at_a_time
from yolor_ray.paired.launch import run_in_stages
from yolor_ray.records import Reproduction, RunOutcome
from yolor_ray.reproduce.plan import ReproducePlan, prepare_reproduction
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.reproduce.summary import summarize
from yolor_ray.table import format_reproduction
from yolor_ray.train.ray_cluster import ray_session

log = logging.getLogger("yolor_ray")


def run_reproduction(spec: ReproduceSpec) -> Reproduction:
    """Train what is missing, then write reproduce.json and reproduce.md; returns the record
    (its runs say which failed and why)."""
    plan = prepare_reproduction(spec)
    pending = plan.pending
    log.info("reproduction %s: %d run(s), %d to train (%d continue from a checkpoint), %d reused",
             plan.location, len(plan.runs), len(pending), sum(r.checkpointed for r in pending),
             len(plan.runs) - len(pending))
    # The plan is written once the cluster can train it: a reproduction that never could leaves nothing.
    found = run_in_stages(plan.paired, plan.seeding, list(plan.comparisons),
                          session=lambda: ray_session(spec.train.address, verbose=spec.train.verbose),
                          at_a_time=lambda local: runs_at_a_time(plan, local), can_start=lambda: write_plan(plan))
    if not pending:
        write_plan(plan)  # rows added to a finished reproduction's plan, with nothing to train
    return write_reproduction(plan, found)


def write_plan(plan: ReproducePlan) -> None:
    plan.storage.write_bytes(plan.manifest.to_json().encode(), plan.name, REPRODUCE_PLAN)


def runs_at_a_time(plan: ReproducePlan, local: bool) -> int:
    """How many runs train side by side on this cluster (a one-line error when not one fits)."""
    spec = plan.spec
    return trials_at_a_time(spec.train, plan.in_actor, spec.max_concurrent, spec.fixed_cluster, local, what="run")


def write_reproduction(plan: ReproducePlan, found: list[RunOutcome]) -> Reproduction:
    """reproduce.json, reproduce.md and reproduce.png (its forest plot) from every planned run's outcome."""
    reproduction = summarize(plan.spec, plan.name, plan.location, plan.manifest.settings, found)
    plan.storage.write_bytes(reproduction.to_json().encode(), plan.name, REPRODUCTION_FILE)
    plan.storage.write_bytes(format_reproduction(reproduction).encode(), plan.name, REPRODUCTION_MD)
    plan.storage.write_bytes(forest_png(reproduction_forest(reproduction)), plan.name, REPRODUCTION_PNG)
    return reproduction
