"""``yolor-ray cluster check``: a cluster.yaml validated offline (docs/cluster.md)."""
from __future__ import annotations

import argparse

GROUP_HELP = "autoscaling Ray cluster files (docs/cluster.md)"  # `yolor-ray cluster`, whose one command this is
HELP = ("validate a cluster.yaml offline: Ray's autoscaler schema, GPU resources declared, no secrets, a storage "
        "location set")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the cluster file, e.g. cluster.yaml")


def run(args: argparse.Namespace) -> int:
    """Validate a cluster.yaml with Ray's autoscaler schema and our rules (docs/cluster.md)."""
    from yolor_ray.cluster.check import check_cluster_config  # deferred: Ray's autoscaler schema

    print(check_cluster_config(args.file).summary())
    return 0
