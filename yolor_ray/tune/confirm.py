"""Confirmation of a sweep's winners against the baseline (``--confirm K --seeds S``).

The top K completed variants and the baseline (the swept config without implicit
knowledge, warm-started too when the sweep was) are the arms of a paired plan
(:mod:`yolor_ray.paired`): S seeds each, every one a run of its own in
``STORAGE/NAME/confirm/ARM-seedN``; the same seed gives variant and baseline the same data
order, so the difference per seed is paired. Per variant: mean +- sd over the seeds and the
paired difference to the baseline with its 95% interval (:mod:`yolor_ray.noise`); "within
noise" where the interval holds 0. Done runs are reused, unfinished ones continue from their
latest checkpoint, and a run that fails is marked in the table (the others go on). With
``--resolution H`` the S seeds are the pilot: each variant then runs the seeds it needs
(Stein's two stages, :mod:`yolor_ray.paired.stages`), the baseline the most any variant needs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging

from yolor_ray.errors import UserError
from yolor_ray.forest import confirmation_forest, forest_png
from yolor_ray.layout import CONFIRM_DIR, CONFIRMATION_FILE, CONFIRMATION_PNG
from yolor_ray.noise import METHOD
from yolor_ray.paired.launch import run_in_stages
from yolor_ray.paired.plan import Arm, plan_paired
from yolor_ray.paired.stages import Comparison, seeding
from yolor_ray.paired.summary import arm_values
from yolor_ray.records import Confirmation, ConfirmedVariant, LeaderboardEntry
from yolor_ray.resolution import METHOD as STEIN_METHOD
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.trial import trial_for

log = logging.getLogger("yolor_ray")
BASELINE = "baseline"


def check_confirmable(plan: PreparedSweep) -> None:
    """Before Ray: the baseline of a YOLOR config would be YOLOR again."""
    if plan.spec.confirm and plan.base_implicit:
        raise UserError(f"--confirm compares variants with the baseline, but {plan.spec.config.name} is a YOLOR "
                        "config; sweep its baseline config (configs/baseline/) to confirm")
    if plan.spec.confirm and plan.trial_spec.warm_start and plan.trial_spec.warm_start.train_params == "implicit":
        raise UserError("--confirm with --train implicit: the baseline has no implicit parameters to fine-tune; "
                        "confirm with --train all")


def confirmation_arms(plan: PreparedSweep, top: list[LeaderboardEntry]) -> list[Arm]:
    """The baseline (no implicit knowledge) first, then each variant as its trial trained."""
    baseline = dataclasses.replace(plan.trial_spec, implicit=None)
    return [Arm(BASELINE, baseline),
            *(Arm(e.label, trial_for(plan.trial_spec, e.variant, plan.base_implicit, None)) for e in top)]


def run_confirmation(plan: PreparedSweep, ranked: list[LeaderboardEntry], max_concurrent: int,
                     local: bool) -> Confirmation:
    """Train what is missing of the top K x S seeds and the baseline's S seeds (and, to a
    resolution, the seeds beyond them), then compare; writes confirmation.json (its runs say
    which failed and why) and confirmation.png (its forest plot)."""
    spec, metric = plan.spec, plan.spec.metric
    seeds = [plan.trial_spec.seed + i for i in range(spec.seeds)]
    top = [e for e in ranked if e.status == "completed"][:spec.confirm]
    paired = plan_paired(confirmation_arms(plan, top), seeds, plan.storage, plan.name, CONFIRM_DIR,
                         in_actor=plan.in_actor, inputs=plan.inputs, kind="confirmation")
    log.info("confirming %d variant(s) against the baseline with %d seeds%s: %d run(s) to train, %d reused",
             len(top), len(seeds), " (the pilot)" if spec.resolution.target is not None else "",
             len(paired.pending), len(paired.runs) - len(paired.pending))
    comparisons = [Comparison(e.label, BASELINE, (metric,)) for e in top]
    # the sweep's metric is an AP as mmdet reports it (tune.spec checks so): 100 AP points a unit
    stages = seeding(seeds, spec.resolution, ap_points=100)
    outcomes = run_in_stages(paired, stages, comparisons, session=lambda: contextlib.nullcontext(local),
                             at_a_time=lambda _: max_concurrent)
    variants = []
    for entry, comparison in zip(top, comparisons):
        compared = stages.paired(outcomes, comparison, metric)
        variants.append(ConfirmedVariant(entry.label, entry.variant, compared,
                                         reached=stages.reached(outcomes, comparison, [compared])))
    baseline_seeds = stages.arm_seeds(outcomes, comparisons).get(BASELINE, seeds)
    confirmation = Confirmation(
        metric=metric, seeds=seeds, method=METHOD if spec.resolution.target is None else STEIN_METHOD,
        baseline=arm_values(outcomes, BASELINE, baseline_seeds, metric), variants=variants, runs=outcomes,
        resolution=spec.resolution.target)
    plan.storage.write_bytes(confirmation.to_json().encode(), plan.name, CONFIRMATION_FILE)
    plan.storage.write_bytes(forest_png(confirmation_forest(confirmation)), plan.name,
                             CONFIRMATION_PNG)
    return confirmation
