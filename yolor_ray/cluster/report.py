"""What ``yolor-ray cluster check`` prints for a valid file: its cloud, node types (instance,
market, resources, workers), spot fallbacks and storage."""
from __future__ import annotations

from dataclasses import dataclass

from yolor_ray.cluster.fields import instance_type, node_types


@dataclass(frozen=True)
class NodeTypeReport:
    name: str
    instance_type: str | None
    market: str  # "spot" or "on-demand"
    cpus: int
    gpus: int
    min_workers: int
    max_workers: int
    is_head: bool


@dataclass(frozen=True)
class ClusterReport:
    path: str
    cluster_name: str
    provider: str
    region: str | None
    max_workers: int
    idle_timeout_minutes: float
    node_types: tuple[NodeTypeReport, ...]
    storage: str
    fallbacks: tuple[tuple[str, str], ...]  # (spot type, its on-demand twin)

    def summary(self) -> str:
        where = f"{self.provider} {self.region}" if self.region else self.provider
        lines = [f"{self.path}: valid (Ray's autoscaler schema and yolor-ray's rules)",
                 f"cluster {self.cluster_name!r} on {where}: up to {self.max_workers} workers, idle nodes removed "
                 f"after {self.idle_timeout_minutes:g} min",
                 f"{'node type':<18} {'instance':<14} {'market':<10} {'CPUs':>5} {'GPUs':>5}  workers"]
        for node in self.node_types:
            workers = "head" if node.is_head else f"{node.min_workers}..{node.max_workers}"
            lines.append(f"{node.name:<18} {node.instance_type or '-':<14} {node.market:<10} {node.cpus:>5} "
                         f"{node.gpus:>5}  {workers}")
        if self.fallbacks:
            lines.append("spot falls back to: " + ", ".join(f"{spot} -> {twin}" for spot, twin in self.fallbacks))
        lines.append(f"storage: {self.storage}")
        lines.append("token auth: on (RAY_AUTH_MODE=token on every ray start); dashboard: SSH port-forward only")
        return "\n".join(lines)


def cluster_report(path: str, config: dict, storage: str) -> ClusterReport:
    head = config["head_node_type"]
    nodes = []
    for name, spec in node_types(config).items():
        node_config = spec.get("node_config") or {}
        market = (node_config.get("InstanceMarketOptions") or {}).get("MarketType", "on-demand")
        resources = spec.get("resources") or {}
        nodes.append(NodeTypeReport(name, instance_type(spec), "spot" if market == "spot" else "on-demand",
                                    resources.get("CPU", 0), resources.get("GPU", 0), spec.get("min_workers", 0),
                                    spec.get("max_workers", 0), name == head))
    nodes.sort(key=lambda node: (not node.is_head, node.gpus, node.name))
    fallbacks = tuple((spot.name, twin.name) for spot in nodes for twin in nodes
                      if spot.market == "spot" and twin.market == "on-demand" and not twin.is_head
                      and spot.instance_type == twin.instance_type)
    provider = config["provider"]
    return ClusterReport(path, config.get("cluster_name", ""), provider["type"], provider.get("region"),
                         config.get("max_workers", 0), config.get("idle_timeout_minutes", 0), tuple(nodes), storage,
                         fallbacks)
