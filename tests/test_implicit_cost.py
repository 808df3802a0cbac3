"""The cost table in docs/implicit.md (its one copy; the README links to it) comes from the code."""
from __future__ import annotations

import pytest

from yolor_ray.deploy.cost import TABLE_HEADER, ImplicitCost, cost_table, implicit_cost

from support.paths import REPO, YOLOR_CONFIGS

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # six full-size detectors, twice


@pytest.fixture(scope="module")
def costs() -> list[ImplicitCost]:
    assert len(YOLOR_CONFIGS) == 6  # the reference table's six rows
    return [implicit_cost(path) for path in YOLOR_CONFIGS]


def test_cost_table_in_the_docs_is_recomputed(costs):
    table = "\n".join([TABLE_HEADER] + [c.row() for c in costs])
    assert cost_table([]) == TABLE_HEADER
    docs = (REPO / "docs" / "implicit.md").read_text()
    assert table in docs, f"docs/implicit.md's cost table is stale; the code gives:\n{table}"


def test_default_variant_costs_under_five_hundredths_of_a_percent(costs):
    for cost in costs:
        assert 0 < cost.added_params and cost.added_pct < 0.05, cost


def test_baseline_counts_are_the_baseline_configs(costs):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules(init_default_scope=False)
    for cost, path in zip(costs, YOLOR_CONFIGS):
        baseline = REPO / "configs" / "baseline" / path.name.removeprefix("yolor_")
        model = MODELS.build(Config.fromfile(str(baseline)).model)
        assert sum(p.numel() for p in model.parameters()) == cost.baseline_params, path.name
