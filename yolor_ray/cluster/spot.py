"""Spot node types: named NAME-spot, and one with an on-demand twin falls back to it only
where the head's autoscaler loads our scorer (with autoscaler v1)."""
from __future__ import annotations

import re

from yolor_ray.cluster.fields import RAY_START, instance_type, is_spot, node_types
from yolor_ray.cluster.scorer import SPOT_SUFFIX, spot_fallback_scorer

SCORER = f"{spot_fallback_scorer.__module__}.{spot_fallback_scorer.__qualname__}"  # its dotted path
SCORER_ENV = re.compile(rf"\bRAY_AUTOSCALER_UTILIZATION_SCORER=[\"']?{re.escape(SCORER)}\b")
AUTOSCALER_V1 = re.compile(r"\bRAY_enable_autoscaler_v2=[\"']?0\b")


def spot_problems(config: dict) -> list[str]:
    problems = []
    types = node_types(config)
    for name, spec in types.items():
        if is_spot(spec) != name.endswith(SPOT_SUFFIX):
            problems.append(f"available_node_types.{name}: " + (
                f"a spot type must be named NAME{SPOT_SUFFIX} (the fallback scorer prefers those)" if is_spot(spec)
                else f"named {SPOT_SUFFIX} but not spot; set node_config.InstanceMarketOptions.MarketType: spot"))
    on_demand = {instance_type(spec) for spec in types.values() if not is_spot(spec)}
    fallback = [name for name, spec in types.items() if is_spot(spec) and instance_type(spec) in on_demand]
    commands = config.get("head_start_ray_commands")
    starts = [c for c in (commands if isinstance(commands, list) else []) if isinstance(c, str) and RAY_START.search(c)]
    if fallback and not any(SCORER_ENV.search(c) and AUTOSCALER_V1.search(c) for c in starts):
        problems.append(f"head_start_ray_commands: {', '.join(fallback)} fall(s) back to on-demand only if the head's "
                        f"`ray start` has RAY_enable_autoscaler_v2=0 RAY_AUTOSCALER_UTILIZATION_SCORER={SCORER} "
                        "(Ray's own scorers retry a failing spot type)")
    return problems
