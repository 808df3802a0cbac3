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

log = logging.getLogger("yolor_ray")


class ClusterTooSmallError(UserError):
    """A run that asks for more than a fixed-size Ray cluster can ever hold."""


@contextmanager
def ray_session(address: str | None, verbose: bool = False) -> Iterator[bool]:
    """Connect to ``address`` (else ``RAY_ADDRESS``), or start a private local Ray when
    neither is set; yields True for a local Ray, which is shut down on exit. An already
    initialised Ray (a sweep's trial) is used as it is.

    Workers' and actors' output stays in Ray's logs and the run's log files (``--verbose``:
    streamed to this driver too, as Ray does by default), on a local Ray and a cluster alike.
    """
    if ray.is_initialized():
        yield False
        return
    quiet = dict(log_to_driver=verbose, logging_level=logging.WARNING if verbose else logging.ERROR,
                 configure_logging=True)
    local = address is None and not os.environ.get("RAY_ADDRESS")
    if local:
        # The dashboard serves Ray's state API, which Train's placement-group cleaner polls.
        ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", **quiet)
    else:
        ray.init(address=address or os.environ["RAY_ADDRESS"], **quiet)
    try:
        yield local
    finally:
        if local:
            ray.shutdown()


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
