"""What implicit knowledge costs: parameters of a YOLOR config against its baseline.

The baseline count is the YOLOR model's minus its implicit parameters: the implicit
modules are the only thing a YOLOR variant adds (its other keys are the baseline's).

    python -m yolor_ray.deploy.cost configs/yolor/*.py     # prints the markdown table
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from mmengine.config import Config

from yolor_ray.config.load import load_config
from yolor_ray.implicit import count_implicit_params
from yolor_ray.models import build_model

TABLE_HEADER = ("| config | baseline params | YOLOR params | added params | added (%) |\n"
                "| --- | ---: | ---: | ---: | ---: |")


@dataclass(frozen=True)
class ImplicitCost:
    name: str
    baseline_params: int
    yolor_params: int

    @property
    def added_params(self) -> int:
        return self.yolor_params - self.baseline_params

    @property
    def added_pct(self) -> float:
        return 100.0 * self.added_params / self.baseline_params

    def row(self) -> str:
        return (f"| {self.name} | {self.baseline_params:,} | {self.yolor_params:,} | {self.added_params:,} | "
                f"{self.added_pct:.4f} |")


def _cfg(config_or_cfg: Any):
    if isinstance(config_or_cfg, Config):
        return config_or_cfg, config_or_cfg.filename and Path(config_or_cfg.filename).stem
    return load_config(config_or_cfg), Path(config_or_cfg).stem


def implicit_cost(config_or_cfg: Any, name: str | None = None) -> ImplicitCost:
    """Baseline and YOLOR parameter counts of a YOLOR config (a file or a Config)."""
    cfg, stem = _cfg(config_or_cfg)
    model = build_model(cfg.model, cfg.get("default_scope", "mmdet"))
    total = sum(p.numel() for p in model.parameters())
    return ImplicitCost(name or stem or "model", total - count_implicit_params(model), total)


def cost_table(configs: Iterable[Any]) -> str:
    """A markdown table, one row per config."""
    return "\n".join([TABLE_HEADER] + [implicit_cost(c).row() for c in configs])


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print("usage: python -m yolor_ray.deploy.cost CONFIG [CONFIG ...]", file=sys.stderr)
        return 2
    print(cost_table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
