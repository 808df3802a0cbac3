"""The runs of a paired plan after a pass, and the comparisons of their arms: per metric each
arm's values per seed, mean ± sd, and the paired difference (variant - baseline) over the
seeds where both arms have a value, with its 95% interval (``yolor_ray.noise``; Stein's for a
comparison run to a resolution, ``yolor_ray.resolution``). APs at full precision where the run
reported them (``metrics.unrounded``): mmdet's 0.001 steps are half the gains in question.
Typed as ``records``' parts; no Ray, no torch."""
from __future__ import annotations

import statistics

from yolor_ray.metrics import unrounded
from yolor_ray.noise import PairedDifference, mean_sd, paired_difference
from yolor_ray.paired.plan import PlannedRun
from yolor_ray.records import ArmValues, PairedMetric, RunOutcome, RunResults
from yolor_ray.resolution import stein_interval

COMPLETED, FAILED, NOT_RUN = "completed", "failed", "not run"


def device_hours(results: RunResults, cpus_per_worker: int) -> float:
    """GPU-hours of a GPU run, CPU-hours of a CPU run: its training time x what it held."""
    devices = (results.world_size or 1) * (1 if results.use_gpu else cpus_per_worker)
    return results.train_time_s * devices / 3600


def outcome_of(run: PlannedRun, location: str, results: RunResults | None, error: str | None,
               cpus_per_worker: int) -> RunOutcome:
    """A planned run after this pass: its results, or why it has none ('not run' without a reason)."""
    if results is None:
        return RunOutcome(run.arm, run.seed, location, FAILED if error else NOT_RUN, error=error or NOT_RUN)
    return RunOutcome(run.arm, run.seed, location, COMPLETED, metrics=results.metrics,
                      train_time_s=results.train_time_s,
                      device_hours=device_hours(results, cpus_per_worker), restarts=results.restarts)


def value_of(outcome: RunOutcome | None, metric: str, scale: float = 1.0) -> float | None:
    """The run's final ``metric`` x ``scale``, unrounded where the run reported it so; None: no
    run, or not reported (COCO's -1: not computed)."""
    value = unrounded(outcome.metrics, metric) if outcome is not None else None
    return None if value is None or value < 0 else scale * value


def arm_values(outcomes: list[RunOutcome], arm: str, seeds: list[int], metric: str, scale: float = 1.0) -> ArmValues:
    by_seed = {o.seed: o for o in outcomes if o.arm == arm}
    values = [value_of(by_seed.get(seed), metric, scale) for seed in seeds]
    present = [v for v in values if v is not None]
    mean, sd = mean_sd(present) if present else (None, None)
    return ArmValues(arm, values, mean, sd)


def paired_metric(outcomes: list[RunOutcome], variant: str, baseline: str, seeds: list[int], metric: str,
                  scale: float = 1.0, pilot: int | None = None) -> PairedMetric:
    """Arm ``variant`` against arm ``baseline`` on ``metric`` (x ``scale``: 100 for %); the
    interval over the seeds where both have a value, when there are two or more. ``pilot``: the
    comparison was run to a resolution with ``seeds[:pilot]`` its pilot; Stein's interval once
    the pilot has every pair (until then, the usual one)."""
    ours, theirs = (arm_values(outcomes, arm, seeds, metric, scale) for arm in (variant, baseline))
    pairs = [(v, b) if v is not None and b is not None else None for v, b in zip(ours.values, theirs.values)]
    present = [pair for pair in pairs if pair is not None]
    paired = PairedMetric(metric, ours, theirs, pairs=len(present), seeds=list(seeds))
    diff: PairedDifference | None = None
    if pilot is not None and len(pairs) >= pilot and None not in pairs[:pilot]:
        diffs = [v - b for v, b in present]  # the pilot's first: ``seeds`` are in order
        paired.pilot, paired.pilot_sd = pilot, statistics.stdev(diffs[:pilot])
        diff = stein_interval(diffs, pilot, paired.pilot_sd)
        paired.diff_sd = statistics.stdev(diffs)  # of all its differences; the interval's is the pilot's
    elif len(present) >= 2:
        diff = paired_difference([v for v, _ in present], [b for _, b in present])
        paired.diff_sd = diff.sd
    if diff is not None:
        paired.diff_mean, paired.low, paired.high = diff.mean, diff.low, diff.high
        paired.within_noise = diff.within_noise
    return paired
