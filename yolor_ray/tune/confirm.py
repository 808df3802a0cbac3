"""Confirmation of a sweep's winners against the baseline (``--confirm K --seeds S``).

The top K completed variants and the baseline (the swept config without implicit
knowledge, warm-started too when the sweep was) train again with S seeds each, every one
a run of its own in ``STORAGE/NAME/confirm/ARM-seedN``: the same seed gives variant and
baseline the same data order, so the difference per seed is paired. Per variant: mean +-
sd over the seeds and the paired difference to the baseline with its 95% interval
(:mod:`yolor_ray.noise`); "within noise" where the interval holds 0. Runs already in
storage for a seed (a results.json) are reused; an unfinished one continues from its
latest checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import operator
import re

from ray import tune

from yolor_ray.data.coco import CocoFolder
from yolor_ray.errors import UserError
from yolor_ray.layout import CONFIRM_DIR, CONFIRMATION_FILE, RESULTS_FILE
from yolor_ray.noise import METHOD, mean_sd, paired_difference
from yolor_ray.records import Confirmation, LeaderboardEntry, RunResults
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.trial import actor_resources, fit_independent_runs, train_trial, trial_for

log = logging.getLogger("yolor_ray")
BASELINE = "baseline"


def arm_name(label: str, seed: int) -> str:
    """The run of one arm at one seed: 'fpn-pred_vector-seed1' (a valid run name)."""
    return f"{re.sub(r'[^A-Za-z0-9.-]+', '_', label.replace('+', '-')).strip('_')[:100]}-seed{seed}"


def arm_spec(trial_spec: TrainSpec, variant: dict | None, base_implicit: dict, name: str, seed: int) -> TrainSpec:
    """The run settings of an arm: a variant as its trial trained, or the baseline (no implicit)."""
    if variant is None:
        return dataclasses.replace(trial_spec, name=name, seed=seed, implicit=None)
    return dataclasses.replace(trial_for(trial_spec, variant, base_implicit, name), seed=seed)


def confirm_trial(config: dict, trial_spec: TrainSpec, base_implicit: dict, data: CocoFolder | None = None,
                  cheap: bool = True) -> None:
    """Tune's function trainable of one confirmation run (named by its arm and seed)."""
    arm = config["run"]
    train_trial(arm_spec(trial_spec, arm["variant"], base_implicit, arm["run"], arm["seed"]), data, cheap)


def check_confirmable(plan: PreparedSweep) -> None:
    """Before Ray: the baseline of a YOLOR config would be YOLOR again."""
    if plan.spec.confirm and plan.base_implicit:
        raise UserError(f"--confirm compares variants with the baseline, but {plan.spec.config.name} is a YOLOR "
                        "config; sweep its baseline config (configs/baseline/) to confirm")
    if plan.spec.confirm and plan.trial_spec.warm_start and plan.trial_spec.warm_start.train_params == "implicit":
        raise UserError("--confirm with --train implicit: the baseline has no implicit parameters to fine-tune; "
                        "confirm with --train all")


def run_confirmation(plan: PreparedSweep, ranked: list[LeaderboardEntry], max_concurrent: int) -> Confirmation:
    """Train what is missing of the top K x S seeds and the baseline's S seeds, then compare."""
    spec = plan.spec
    seeds = [plan.trial_spec.seed + i for i in range(spec.seeds)]
    top = [e for e in ranked if e.status == "completed"][:spec.confirm]
    arms = [(BASELINE, None), *((e.label, e.variant) for e in top)]
    storage_uri = plan.storage.location(plan.name, CONFIRM_DIR)
    confirm_spec = dataclasses.replace(plan.trial_spec,
                                       storage=dataclasses.replace(plan.trial_spec.storage, uri=storage_uri))
    runs = open_storage(StorageSpec(storage_uri, plan.trial_spec.storage.endpoint))
    pending = [dict(run=arm_name(label, seed), variant=variant, seed=seed) for label, variant in arms for seed in seeds
               if runs.read_text(arm_name(label, seed), RESULTS_FILE) is None]
    log.info("confirming %d variant(s) against the baseline with %d seeds: %d run(s) to train, %d reused",
             len(top), len(seeds), len(pending), len(arms) * len(seeds) - len(pending))
    if pending:
        _train(plan, confirm_spec, pending, max_concurrent)
    values = {}
    for label, _ in arms:
        for seed in seeds:
            text = runs.read_text(arm_name(label, seed), RESULTS_FILE)
            if text is None:
                raise RuntimeError(f"confirmation run {runs.location(arm_name(label, seed))} did not finish")
            values.setdefault(label, []).append(RunResults.from_json(text).metrics.get(spec.metric))
    confirmation = compare(values, arms, seeds, spec.metric, runs)
    plan.storage.write_bytes(confirmation.to_json().encode(), plan.name, CONFIRMATION_FILE)
    return confirmation


def _train(plan: PreparedSweep, confirm_spec: TrainSpec, pending: list[dict], max_concurrent: int) -> None:
    storage_path, filesystem = plan.storage.ray_storage()
    # As the sweep's: Tune's experiment in confirm/, each in-process run's Tune folder its run folder.
    trainable = tune.with_parameters(confirm_trial, trial_spec=confirm_spec, base_implicit=plan.base_implicit,
                                     data=plan.data, cheap=plan.in_process)
    results = fit_independent_runs(trainable, pending, operator.itemgetter("run"),
                                   resources=actor_resources(plan.trial_spec, plan.in_process),
                                   storage_path=f"{storage_path}/{plan.name}", filesystem=filesystem,
                                   experiment=CONFIRM_DIR, at_a_time=max_concurrent, cheap=plan.in_process,
                                   max_failures=plan.trial_spec.checkpoints.max_failures)
    errors = [r.error for r in results if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} confirmation run(s) failed: {errors[0]}")


def compare(values: dict[str, list], arms: list, seeds: list[int], metric: str, runs) -> Confirmation:
    """Per arm mean +- sd; per variant the paired difference to the baseline."""
    base = values[BASELINE]
    base_mean, base_sd = mean_sd(base)
    variants = []
    for label, variant in arms[1:]:
        mean, sd = mean_sd(values[label])
        diff = paired_difference(values[label], base)
        variants.append(dict(label=label, variant=variant, values=values[label], mean=mean, sd=sd,
                             diff_mean=diff.mean, diff_sd=diff.sd, low=diff.low, high=diff.high,
                             within_noise=diff.within_noise,
                             runs=[runs.location(arm_name(label, s)) for s in seeds]))
    return Confirmation(metric=metric, seeds=seeds, method=METHOD,
                        baseline=dict(values=base, mean=base_mean, sd=base_sd,
                                      runs=[runs.location(arm_name(BASELINE, s)) for s in seeds]),
                        variants=variants)
