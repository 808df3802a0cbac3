"""``yolor-ray cluster check FILE``: a Ray autoscaler cluster file checked offline, by Ray's
own schema and then our rules (docs/cluster.md, "What `yolor-ray cluster check` enforces"),
so that a bad file fails on the laptop with every problem listed at once, before ``ray up``
spends anything. Nothing here contacts the cloud. Each family of rules is a module of its own
(``ray_schema``, ``resources``, ``secrets``, ``shared_storage``, ``access``, ``spot``), reading
the file through ``fields``; ``report`` is what a valid file prints.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from yolor_ray import paths
from yolor_ray.cluster.access import auth_problems, exposure_problems
from yolor_ray.cluster.ray_schema import ray_problems
from yolor_ray.cluster.report import ClusterReport, cluster_report
from yolor_ray.cluster.resources import resource_problems
from yolor_ray.cluster.secrets import secret_problems
from yolor_ray.cluster.shared_storage import storage_and_problems
from yolor_ray.cluster.spot import spot_problems
from yolor_ray.errors import UserError


class ClusterFileError(UserError, ValueError):
    """A cluster file that cannot be read as one: missing, unreadable, not UTF-8, not a YAML mapping."""


class ClusterConfigError(UserError, ValueError):
    """A cluster file that Ray or our rules reject; ``problems`` holds one line per problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s):\n  - " + "\n  - ".join(self.problems))

    def __reduce__(self):  # picklable with its fields, like Ray's own errors
        return type(self), (self.path, self.problems)


def check_cluster_config(path: str | Path) -> ClusterReport:
    """Validate a cluster file offline; raises ``ClusterConfigError`` listing every problem, or
    ``ClusterFileError`` (one line) for a file that cannot be read as YAML."""
    text = paths.read_text(path, "cluster file", ClusterFileError)
    path = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ClusterFileError(f"cluster file {path!r} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ClusterFileError(f"cluster file {path!r}: the top level must be a mapping of Ray cluster keys, got "
                               f"{type(raw).__name__}")

    problems, prepared = ray_problems(raw)
    config = prepared if prepared is not None else raw
    problems += resource_problems(config)
    problems += secret_problems(raw)
    storage, storage_problems = storage_and_problems(raw, config)
    problems += storage_problems
    problems += auth_problems(raw, config)
    problems += exposure_problems(raw, config)
    problems += spot_problems(config)
    if problems:
        raise ClusterConfigError(path, problems)
    return cluster_report(path, config, storage)
