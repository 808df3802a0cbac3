"""The node-type scorer the head's autoscaler loads (``RAY_AUTOSCALER_UTILIZATION_SCORER``
in cluster.yaml): spot first, then the on-demand twin of a spot type whose launch just failed,
which Ray 2.60's own scorers never do (docs/cluster.md, "Spot and fallback"). The autoscaler
imports it, so it stays light: Ray's scheduler, no torch or mmdet.
"""
from __future__ import annotations

from ray.autoscaler._private.resource_demand_scheduler import _default_utilization_scorer

SPOT_SUFFIX = "-spot"  # names a spot node type; ``yolor-ray cluster check`` holds the file to it


def spot_fallback_scorer(node_resources: dict, resources: list, node_type: str, *, node_availability_summary):
    """Ray's default score, then: types whose last launch failed (within Ray's availability
    window, 30 min by default) rank below those that did not, then spot (``*-spot``) above
    on-demand. Fit comes first, so a 1-GPU demand never falls back to an 8-GPU type while a
    1-GPU type fits; among types that fit equally, spot is tried first and its on-demand twin
    takes over after a spot launch fails (no capacity in any zone listed)."""
    score = _default_utilization_scorer(node_resources, resources, node_type,
                                        node_availability_summary=node_availability_summary)
    if score is None:
        return None
    records = node_availability_summary.node_availabilities if node_availability_summary else {}
    record = records.get(node_type)
    available = record is None or record.is_available
    return (*score, available, node_type.endswith(SPOT_SUFFIX))
