"""The Ray cluster a driver runs on: connect (or start a private local one), shut down
what we started, and check that a run or a sweep fits before anything is submitted."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

import ray

from yolor_ray.errors import UserError

# Ray gives the head node this resource: trial actors (drivers of their trainers) stay
# there, so a worker node's CPUs go to workers and a lost worker node loses no trial.
HEAD_RESOURCE = "node:__internal_head__"
SMALLER_HINT = "Use fewer --num-workers or --cpus-per-worker, or --address of a larger cluster"
# Set in the driver and in every process of a private local Ray (its job's runtime env):
# this machine alone, started for one command and shut down with it. Ray Train drops there
# what only a cluster needs (``train.trainer``); its preemption watcher polls Ray for nodes
# being drained, which never happens to a private Ray (Ray Train's own switch, which its
# controller passes on to the workers).
PRIVATE_RAY_ENV = "YOLOR_RAY_PRIVATE_LOCAL"
PRIVATE_RAY_ENV_VARS = {PRIVATE_RAY_ENV: "1", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
                        # Ray Train's metrics, for a Prometheus scraping a cluster's nodes: none here
                        "RAY_TRAIN_METRICS_ENABLED": "0"}

log = logging.getLogger("yolor_ray")


class ClusterTooSmallError(UserError):
    """A run that asks for more than a fixed-size Ray cluster can ever hold."""


@contextmanager
def ray_session(address: str | None, verbose: bool = False) -> Iterator[bool]:
    """Connect to ``address`` (else ``RAY_ADDRESS``), or start a private local Ray when
    neither is set (:func:`private_ray`); yields True for a local Ray, which is shut down on
    exit. An already initialised Ray (a sweep's trial) is used as it is.

    Workers' and actors' output stays in Ray's logs and the run's log files (``--verbose``:
    streamed to this driver too, as Ray does by default), on a local Ray and a cluster alike.
    """
    if ray.is_initialized():
        yield False
        return
    quiet = dict(log_to_driver=verbose, logging_level=logging.WARNING if verbose else logging.ERROR,
                 configure_logging=True)
    if address is None and not os.environ.get("RAY_ADDRESS"):
        with private_ray(**quiet):
            yield True
        return
    ray.init(address=address or os.environ["RAY_ADDRESS"], **quiet)
    yield False


@contextmanager
def private_ray(**init_options) -> Iterator[None]:
    """A private local Ray for this process (``ray.init``'s ``init_options``), shut down on exit.

    It starts without the dashboard: nothing of ours uses it on a private Ray, and its head
    and nine module processes cost seconds of every run's start-up on a small machine. Nor
    does Ray start an idle worker per CPU for this driver (ours run in processes of their
    own: trainers, actors). Every process of it, and this driver while it runs, gets
    :data:`PRIVATE_RAY_ENV_VARS` (:func:`on_private_ray`).
    """
    saved = {key: os.environ.get(key) for key in PRIVATE_RAY_ENV_VARS}
    os.environ.update(PRIVATE_RAY_ENV_VARS)  # this driver's own trainers read them here
    try:
        ray.init(address="local", include_dashboard=False, runtime_env=dict(env_vars=dict(PRIVATE_RAY_ENV_VARS)),
                 _system_config=dict(prestart_worker_first_driver=False), **init_options)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def on_private_ray() -> bool:
    """Whether this process belongs to a private local Ray (:func:`private_ray` started it)."""
    return os.environ.get(PRIVATE_RAY_ENV) == "1"


def shortfalls(need: dict[str, float], total: dict[str, float]) -> dict[str, float]:
    """The resources of ``need`` the cluster has less of than asked (name -> what it has)."""
    return {key: total.get(key, 0) for key, amount in need.items() if amount > total.get(key, 0)}


def head_cpus() -> float:
    """CPUs of the head node(s) (where trial actors run)."""
    return sum(node["Resources"].get("CPU", 0) for node in ray.nodes()
               if node.get("Alive") and HEAD_RESOURCE in node["Resources"])


def require_fit(fits: bool, subject: str, needs: str, fixed: bool, local: bool) -> None:
    """A cluster that cannot grow and can never hold ``subject`` is an error (before any
    submission); one with an autoscaler is waited for, with a warning."""
    if fits:
        return
    if fixed:
        raise ClusterTooSmallError(f"the {'local ' if local else ''}Ray cluster can never hold {subject}: {needs}. "
                                   f"{SMALLER_HINT}")
    log.warning("the cluster has too few resources right now (%s); waiting for the autoscaler to add nodes", needs)


def describe_resources(resources: dict, keys: dict | None = None) -> str:
    """``'5 CPU, 1 GPU'``: ``resources`` (those of ``keys`` alone, when given), for fit messages."""
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in (keys or resources))
