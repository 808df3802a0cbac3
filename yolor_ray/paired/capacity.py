"""What one run (a sweep's trial, a confirmation's or a reproduction's run) asks of the
cluster, and how many run side by side.

A 1-worker run trains in its Tune actor (:func:`trains_in_actor`): the actor holds the worker's
resources itself. Any other is a TorchTrainer run started from its actor, which holds one CPU
on the head (:data:`TRIAL_ACTOR`) while the trainer's workers hold theirs.
"""
from __future__ import annotations

import logging
import math

import ray

from yolor_ray.train.ray_cluster import HEAD_RESOURCE, describe_resources, head_cpus, require_fit
from yolor_ray.train.spec import RunSettings

log = logging.getLogger("yolor_ray")
# The actor of a run that drives a TorchTrainer: one CPU, on the head (see HEAD_RESOURCE).
TRIAL_ACTOR = {"CPU": 1, HEAD_RESOURCE: 0.001}


def trains_in_actor(spec: RunSettings, trainer_runs: bool = False) -> bool:
    """A run of one worker trains in its Tune actor: no TorchTrainer, no helper actors
    (``trainer_runs``: every run a TorchTrainer run all the same)."""
    return spec.scaling.num_workers == 1 and not trainer_runs


def trial_resources(spec: RunSettings, in_actor: bool) -> dict[str, float]:
    """What one run needs from the cluster: its worker alone when it trains in its Tune
    actor, else its actor's CPU on the head plus its trainer's workers."""
    need = spec.scaling.workers_reservation()
    if not in_actor:
        need["CPU"] += TRIAL_ACTOR["CPU"]
    return need


def actor_resources(spec: RunSettings, in_actor: bool) -> dict[str, float]:
    """What Tune reserves for the run's own actor: the worker itself when it trains there."""
    return spec.scaling.workers_reservation() if in_actor else dict(TRIAL_ACTOR)


def concurrency(total: dict[str, float], need: dict[str, float], head_cpus: float | None = None) -> int:
    """Runs that fit side by side (0: not even one); ``head_cpus`` bounds the runs' actors."""
    fits = min(math.floor(total.get(key, 0) / amount) for key, amount in need.items())
    if head_cpus is not None:
        fits = min(fits, math.floor(head_cpus / TRIAL_ACTOR["CPU"]))
    return int(fits)


def sweep_concurrency(fits: int, requested: int | None, fixed: bool) -> tuple[int, str | None]:
    """Runs at a time and, when the request was cut, why. On a cluster that cannot grow,
    more runs than fit would start their actors and hold the CPUs their own workers wait
    for: a deadlock. A cluster that can grow gets what was asked for."""
    wanted = requested or max(fits, 1)
    if fixed and wanted > fits:
        return max(fits, 1), (f"--max-concurrent {wanted}: the cluster cannot grow and holds {fits} trial(s) at a "
                              f"time; using {max(fits, 1)}")
    return wanted, None


def trials_at_a_time(spec: RunSettings, in_actor: bool, requested: int | None, fixed_cluster: bool, local: bool,
                     what: str = "trial") -> int:
    """How many runs of ``spec`` (a sweep's trials, or a reproduction's runs: ``what``) run side
    by side on this cluster; a one-line error when not one fits a cluster that cannot grow."""
    need = trial_resources(spec, in_actor)
    fixed = local or fixed_cluster
    total, on_head = ray.cluster_resources(), head_cpus()
    fits = concurrency(total, need, head_cpus=None if in_actor else on_head)
    layout = (f"its worker, in the {what}'s own process" if in_actor else
              f"1 CPU on the head for the {what}, the rest for its {spec.scaling.num_workers} worker(s)")
    require_fit(fits >= 1, f"a {what}", f"one {what} needs {describe_resources(need)} ({layout}), but the cluster "
                f"has {describe_resources(total, need)} ({on_head:g} CPU on the head)", fixed, local)
    max_concurrent, cut = sweep_concurrency(fits, requested, fixed)
    if cut:
        log.warning(cut)
    return max_concurrent
