"""How many seeds each comparison of a paired plan runs, and the intervals it reports: a fixed
number (``--seeds``, :class:`FixedSeeds`), or seeds on demand (``--resolution H``,
:class:`TwoStages`): Stein's two stages (``yolor_ray.resolution``), the plan's seeds the pilot.

A comparison is a variant arm against a baseline arm (a reproduction's row: YOLOR against its
baseline; a confirmation's variant against the shared baseline). Run to a resolution, its
pilot's paired differences fix N, the seeds it needs in all (the largest over its primary
metrics: box AP, and mask AP for Mask R-CNN), at most ``--max-seeds``; an arm in several
comparisons runs the most any of them needs (a confirmation's baseline). The seeds beyond the
pilot are the second stage, which ``launch`` trains through the same scheduler in one pass.
N is a function of the pilot's stored results, so the same command finds the same N again and
trains only what is missing; a higher ``--max-seeds`` adds the seeds a capped comparison lacks.

Pure: no Ray, no storage.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from yolor_ray.paired.summary import COMPLETED, paired_metric
from yolor_ray.records import (
    CAPPED,
    INCOMPLETE,
    PILOT_INCOMPLETE,
    RESOLVED,
    PairedMetric,
    RunOutcome,
    SeedsReached,
)
from yolor_ray.resolution import Resolution, SeedsNeeded, seeds_needed


@dataclass(frozen=True)
class Comparison:
    """Arm ``variant`` against arm ``baseline`` (labels); ``primary``: the metrics whose largest N
    it runs to a resolution; values x ``scale`` are its unit (100: AP in %)."""

    variant: str
    baseline: str
    primary: tuple[str, ...]
    scale: float = 1.0

    @property
    def arms(self) -> tuple[str, str]:
        return self.variant, self.baseline


@dataclass(frozen=True)
class FixedSeeds:
    """Every arm at the plan's ``seeds``; the usual paired t interval over them."""

    seeds: tuple[int, ...]

    def seeds_of(self, outcomes: list[RunOutcome], comparison: Comparison) -> list[int]:
        """The seeds whose pairs the comparison reports."""
        return list(self.seeds)

    def arm_seeds(self, outcomes: list[RunOutcome], comparisons: list[Comparison]) -> dict[str, list[int]]:
        """Each arm's seeds in all (label -> seeds)."""
        return {arm: self.seeds_of(outcomes, c) for c in comparisons for arm in c.arms}

    def second_stage(self, outcomes: list[RunOutcome], comparisons: list[Comparison]) -> dict[str, list[int]]:
        """The seeds each arm runs beyond the plan's (label -> seeds; none)."""
        return {}

    def paired(self, outcomes: list[RunOutcome], comparison: Comparison, metric: str) -> PairedMetric:
        return paired_metric(outcomes, comparison.variant, comparison.baseline, self.seeds_of(outcomes, comparison),
                             metric, comparison.scale)

    def reached(self, outcomes: list[RunOutcome], comparison: Comparison,
                metrics: list[PairedMetric]) -> SeedsReached | None:
        """What the comparison reached (None: it was not run to a resolution)."""
        return None


@dataclass(frozen=True)
class TwoStages(FixedSeeds):
    """Stein's two stages: ``seeds`` the pilot, then per comparison N seeds in all, at most
    ``max_seeds``, for a half-width of ``target`` (in the comparisons' unit)."""

    target: float
    max_seeds: int

    @property
    def pilot(self) -> int:
        return len(self.seeds)

    def first(self, count: int) -> list[int]:
        """The first ``count`` seeds: the pilot's, then on from its last."""
        last = self.seeds[-1]
        return [*self.seeds[:count], *range(last + 1, last + 1 + count - self.pilot)]

    def needs(self, outcomes: list[RunOutcome], comparison: Comparison) -> SeedsNeeded | None:
        """N from the pilot: the largest over the primary metrics reported (a metric no run
        reports, such as mask AP at a scale without masks, does not count); None while the
        pilot lacks a pair."""
        found = []
        for metric in comparison.primary:
            pilot = paired_metric(outcomes, comparison.variant, comparison.baseline, list(self.seeds), metric,
                                  comparison.scale)
            if not pilot.variant.present and not pilot.baseline.present:
                continue
            if pilot.pairs < self.pilot:
                return None
            found.append(seeds_needed(self.pilot, pilot.diff_sd, self.target, self.max_seeds))
        return max(found, key=lambda need: need.needed, default=None)

    def seeds_of(self, outcomes: list[RunOutcome], comparison: Comparison) -> list[int]:
        need = self.needs(outcomes, comparison)
        return self.first(need.run if need is not None else self.pilot)

    def arm_seeds(self, outcomes: list[RunOutcome], comparisons: list[Comparison]) -> dict[str, list[int]]:
        """An arm in several comparisons runs the most seeds any of them does."""
        found: dict[str, list[int]] = {}
        for comparison in comparisons:
            seeds = self.seeds_of(outcomes, comparison)
            for arm in comparison.arms:
                if len(seeds) > len(found.get(arm, ())):
                    found[arm] = seeds
        return found

    def second_stage(self, outcomes: list[RunOutcome], comparisons: list[Comparison]) -> dict[str, list[int]]:
        return {arm: seeds[self.pilot:] for arm, seeds in self.arm_seeds(outcomes, comparisons).items()
                if len(seeds) > self.pilot}

    def paired(self, outcomes: list[RunOutcome], comparison: Comparison, metric: str) -> PairedMetric:
        """Over the comparison's own seeds (not more: a shared baseline may have run further),
        Stein's interval with the pilot's sd."""
        return paired_metric(outcomes, comparison.variant, comparison.baseline, self.seeds_of(outcomes, comparison),
                             metric, comparison.scale, pilot=self.pilot)

    def reached(self, outcomes: list[RunOutcome], comparison: Comparison,
                metrics: list[PairedMetric]) -> SeedsReached:
        """Resolved, capped (and what the rest would cost), incomplete, or the pilot still
        incomplete; ``metrics``: the comparison's paired metrics (``paired``)."""
        need = self.needs(outcomes, comparison)
        reached = SeedsReached(PILOT_INCOMPLETE, self.target, self.pilot, primary=list(comparison.primary))
        primary = [m for m in metrics if m.metric in comparison.primary and m.has_interval]
        if need is None or not primary:
            return reached
        reached.pilot_sd, reached.needed, reached.planned = need.pilot_sd, need.needed, need.run
        reached.run = min(m.pairs for m in primary)
        reached.half_width = max(m.half_width for m in primary)
        reached.status = INCOMPLETE if reached.run < need.run else CAPPED if need.capped else RESOLVED
        if need.capped:
            reached.rest_device_hours = rest_device_hours(outcomes, comparison, need.needed - need.run)
        return reached


def rest_device_hours(outcomes: list[RunOutcome], comparison: Comparison, seeds: int) -> float | None:
    """What ``seeds`` more seeds of both arms would cost, at the mean device-hours of the
    comparison's completed runs (None: none completed with a cost); a baseline shared by several
    capped comparisons is counted in each."""
    hours = [o.device_hours for o in outcomes if o.arm in comparison.arms and o.status == COMPLETED
             and o.device_hours is not None]
    return 2 * seeds * statistics.fmean(hours) if hours else None


def seeding(seeds: list[int], resolution: Resolution, ap_points: float) -> FixedSeeds:
    """How the comparisons of a plan with the pilot ``seeds`` run: ``resolution.target`` H (AP
    points) set: two stages; else fixed. ``ap_points``: AP points in one unit of the comparisons'
    values (1 for AP in %, 100 for AP as mmdet reports it), so that H is in their unit."""
    if resolution.target is None:
        return FixedSeeds(tuple(seeds))
    return TwoStages(tuple(seeds), target=resolution.target / ap_points, max_seeds=resolution.max_seeds)
