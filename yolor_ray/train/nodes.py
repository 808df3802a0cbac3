"""What differs across the nodes of a cluster: which nodes can hold a worker, the data
each of them has, and the topology a worker group observed.

Nothing here assumes a shared filesystem: the data check runs on every node that can
hold a worker, and a worker group learns where its ranks run from the ranks themselves.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ray
import torch.distributed as dist
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from yolor_ray.data.coco import (
    SPLITS,
    CocoFolder,
    DatasetError,
    SplitFingerprint,
    annotation_file,
    fingerprint_differences,
)

log = logging.getLogger("yolor_ray")


@dataclass(frozen=True)
class DataCheck:
    """A dataset folder and what each split must look like on every node (from the driver)."""

    root: str
    splits: dict[str, SplitFingerprint]

    @classmethod
    def of(cls, folder: CocoFolder) -> DataCheck:
        return cls(str(folder.root), {split: getattr(folder, split).fingerprint for split in SPLITS})

    def differences(self) -> list[str]:
        """How this machine's copy differs from the driver's (empty: the same)."""
        root = Path(self.root)
        if not root.is_dir():
            return [f"dataset folder {self.root!r} does not exist"]
        problems = []
        for split, expected in self.splits.items():
            problems += fingerprint_differences(annotation_file(root, split), root / split, expected)
        return problems


def node_label(ip: str, node_id: str) -> str:
    return f"node {ip} ({node_id[:12]})"


def raise_if_data_differs(check: DataCheck) -> None:
    """In a worker: fail with the same message as the driver's check (a node that joined later)."""
    problems = check.differences()
    if problems:
        here = node_label(ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id())
        raise DatasetError(f"{here} cannot train on {check.root!r}: {'; '.join(problems)}. Every node that runs "
                           "workers needs the same dataset at the same path")


def worker_capable_nodes(worker_resources: dict[str, float]) -> list[dict]:
    """Alive nodes whose total resources hold at least one worker."""
    return [node for node in ray.nodes()
            if node.get("Alive") and all(node["Resources"].get(key, 0) >= amount
                                         for key, amount in worker_resources.items())]


@ray.remote(num_cpus=0)
def _differences_on_node(check: DataCheck) -> list[str]:
    return check.differences()


def check_data_on_nodes(check: DataCheck, worker_resources: dict[str, float], timeout_s: float = 300.0) -> int:
    """Before training: the dataset on every node that can hold a worker matches the
    driver's. Raises :class:`DatasetError` naming each node and what differs there;
    returns how many nodes were checked."""
    nodes = worker_capable_nodes(worker_resources)
    pending = {
        _differences_on_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
        .remote(check): node for node in nodes}
    problems = []
    for ref, node in pending.items():
        try:
            found = ray.get(ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            found = [f"no answer within {timeout_s:.0f} s"]
        if found:
            problems.append(f"{node_label(node['NodeManagerAddress'], node['NodeID'])}: {'; '.join(found)}")
    if problems:
        raise DatasetError(f"the dataset {check.root!r} is not the same on every node that can run workers: "
                           + " | ".join(problems) + ". Copy it to the same path on every node (or use a filesystem "
                           "every node mounts)")
    log.info("dataset %s checked on %d node(s)", check.root, len(nodes))
    return len(nodes)


def gather_topology() -> list[dict]:
    """In a worker: every rank's node, in rank order, as the ranks see it (a collective)."""
    here = dict(node_id=ray.get_runtime_context().get_node_id(), ip=ray.util.get_node_ip_address())
    if not dist.is_available() or not dist.is_initialized():
        return [dict(rank=0, **here)]
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, here)
    return [dict(rank=rank, **node) for rank, node in enumerate(every)]


def spans_nodes(topology: list[dict]) -> bool:
    return len({rank["node_id"] for rank in topology}) > 1
