"""``yolor-ray tune --dry-run``: a prepared sweep as text, its settings and then its first
trial as a run would print it; nothing is trained or written."""
from __future__ import annotations

import json

from yolor_ray.train.describe import describe_run
from yolor_ray.train.prepare import prepare_run
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.trial import trial_for


def _state_of(plan: PreparedSweep) -> str:
    if plan.finished:
        return "complete: only its confirmation is trained"
    return "resuming the unfinished sweep" if plan.resuming else "a new sweep"


def describe_sweep(plan: PreparedSweep) -> tuple[str, str]:
    """``--dry-run`` of a sweep: its settings, then the first trial as a run would print it."""
    first = {d.key: d.values()[0] for d in plan.space.dimensions}
    trial, config_text = describe_run(prepare_run(trial_for(plan.trial_spec, first, plan.base_implicit, "first"),
                                                  plan.inputs))
    spec = plan.spec
    lines = [
        f"sweep:    {plan.location} ({_state_of(plan)})",
        f"trials:   {plan.trials} by {plan.search} search, {plan.epochs} epochs each, ranked by {spec.metric} "
        f"({spec.mode}), " + ("ASHA early stopping" if spec.early_stopping else "no early stopping"),
        f"space:    {json.dumps(plan.space.to_config())}",
        "first trial:",
        *("  " + line for line in trial.splitlines()),
    ]
    return "\n".join(lines), config_text
