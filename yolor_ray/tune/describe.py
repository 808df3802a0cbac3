"""``yolor-ray tune --dry-run``: a prepared sweep as text, its settings (with ``--confirm``, the
confirmation's seeds: priced per comparison with ``--resolution H`` and an sd) and then its first
trial as a run would print it; nothing is trained or written."""
from __future__ import annotations

import json

from yolor_ray.prior import read_prior
from yolor_ray.resolution import cap_text, fewest_text, priced_seeds
from yolor_ray.train.describe import describe_run
from yolor_ray.train.prepare import prepare_run
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.spec import SweepSpec
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
        *confirmation_lines(spec),
        "first trial:",
        *("  " + line for line in trial.splitlines()),
    ]
    return "\n".join(lines), config_text


def confirmation_lines(spec: SweepSpec) -> list[str]:
    """``--confirm K``: its arms and seeds; with ``--resolution H`` and ``--assume-sd S`` or ``--prior``
    (one sd for every comparison: a prior's largest), the seeds a comparison's pilot leads to."""
    if not spec.confirm:
        return []
    head, resolution = f"confirm:  the top {spec.confirm} variant(s) and the baseline", spec.resolution
    if resolution.target is None:
        return [f"{head}, {spec.seeds} seeds each"]
    lines = [f"{head}, a pilot of {spec.seeds} seeds each; each comparison to ±{resolution.target:g} AP, at most "
             f"{resolution.max_seeds} seeds (Stein's two-stage rule)"]
    if resolution.assume_sd is not None:
        sd, source = resolution.assume_sd, "assumed"
    elif resolution.prior is not None:
        prior = read_prior(resolution.prior, spec.train.storage)
        sd, source = prior.largest, f"the largest measured by the {prior.kind} {prior.location}"
    else:
        return lines
    priced = priced_seeds(sd, resolution.target, spec.seeds, resolution.max_seeds)
    seeds = f"{priced.needed} seeds per comparison" + (f", {priced.run} run (--max-seeds)" if priced.capped else "")
    lines.append(f"          at sd {sd:.3g} AP ({source}): {seeds}, {spec.confirm + 1} x {priced.run} runs; "
                 f"the fewest: {fewest_text(priced)}")
    cap = cap_text(priced)
    return lines + ([f"          {cap}"] if cap else [])
