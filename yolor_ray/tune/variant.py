"""A variant Tune sampled from a sweep's space, as a run's settings: ``implicit=dict(...)``
over the config's own, and the short label the leaderboard shows."""
from __future__ import annotations

from typing import Mapping

from yolor_ray.tune.space import JOIN, MODELING_PARAMS, SpaceError, effective


def implicit_of(variant: Mapping, base: Mapping | None = None) -> dict:
    """``implicit=dict(...)`` for a sampled variant, over the config's own ``base``."""
    variant = effective(variant)
    implicit = {k: v for k, v in (base or {}).items()}
    placements = variant.get("placements")
    names = placements.split(JOIN) if placements is not None else None
    if names is None:
        names = [p if isinstance(p, str) else p.get("name") for p in implicit.get("placements", ["fpn", "pred"])]
        if None in names and any(k.startswith("operators.") for k in variant):
            raise SpaceError("operators are searched per placement name; the config's placements use module paths")
    if placements is not None or any(k.startswith("operators.") for k in variant):
        entries = []
        for name in names:
            ops = variant.get(f"operators.{name}")
            entries.append(dict(name=name, operators=ops.split(JOIN)) if ops else name)
        implicit["placements"] = entries
    for key in ("modeling", "atoms", "dim"):
        if key in variant:
            implicit[key] = variant[key]
    init = {op: dict(v) for op, v in (implicit.get("init") or {}).items()}
    for key, value in variant.items():
        if key.startswith("init."):
            op, stat = key[len("init."):].rsplit("_", 1)
            init.setdefault(op, {})[stat] = float(value)
    if init:
        implicit["init"] = init
    return implicit


def label_of(variant: Mapping) -> str:
    """A short human label: 'fpn+pred pred:multiply+add mf atoms=4 add_std=0.02'."""
    parts = []
    for key, value in sorted(effective(variant).items()):
        if key == "placements":
            parts.insert(0, value)
        elif key.startswith("operators."):
            parts.append(f"{key.split('.', 1)[1]}:{value}")
        elif isinstance(value, float):
            parts.append(f"{key.split('.')[-1]}={value:.3g}")
        else:
            parts.append(f"{key}={value}" if key in MODELING_PARAMS else str(value))
    return " ".join(parts)


__all__ = ["implicit_of", "label_of"]
