"""``reproduce --dry-run --resolution H`` with ``--assume-sd S`` or ``--prior``: per row the seeds
a pilot of ``--seeds`` leads to (Stein's N, ``resolution.priced_seeds``), capped at ``--max-seeds``,
and their device-hours at the figures of the plan's estimate (``estimate``); the pilot that makes
N smallest, with its N and its hours. Nothing is written."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from yolor_ray.paired.plan import DONE
from yolor_ray.prior import read_prior
from yolor_ray.reproduce.estimate import Estimate, totals_text
from yolor_ray.reproduce.plan import ReproducePlan
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.resolution import PricedSeeds, cap_text, fewest_text, priced_seeds
from yolor_ray.units import device_time_text


@dataclass(frozen=True)
class RowSeeds:
    """One row at the resolution: its sd (None: the prior measured none), the seeds it leads to,
    and the device-hours of the runs still to train for them (None: no seconds per iteration)."""

    row: str
    sd: float | None
    seeds: PricedSeeds | None
    hours: float | None  # at seeds.run seeds a row (both arms), the runs already done not counted
    needed_hours: float | None  # the same at seeds.needed (more than ``hours`` where capped)
    fewest_hours: float | None  # the same at the fewest seeds' pilot


@dataclass(frozen=True)
class ResolutionPrice:
    resolution: float
    pilot: int
    max_seeds: int
    source: str  # where the sd comes from
    rows: tuple[RowSeeds, ...]
    estimate: Estimate  # the plan's, its runs to train at each row's seeds


def row_sds(spec: ReproduceSpec) -> tuple[dict[str, float | None], str]:
    """Each row's sd in AP points (None: the prior measured none for it) and where it comes from:
    --assume-sd, or the record --prior names (read here: a bad one fails before the plan is prepared)."""
    resolution = spec.resolution
    if resolution.assume_sd is not None:
        return dict.fromkeys(spec.rows, resolution.assume_sd), f"{resolution.assume_sd:g} AP, assumed (--assume-sd)"
    prior = read_prior(resolution.prior, spec.train.storage)
    source = f"measured by the {prior.kind} {prior.location}: {prior.basis}"
    return {row: prior.sd_for(row) for row in spec.rows}, source


def price_resolution(plan: ReproducePlan, est: Estimate, sds: dict[str, float | None], source: str) -> ResolutionPrice:
    """The plan's estimate redone at each row's seeds (a row without an sd: its pilot's runs)."""
    spec = plan.spec
    resolution = spec.resolution
    done = {key: sum(run.state == DONE and plan.arms[run.arm] == key for run in plan.runs) for key in plan.configs}
    arms = {(a.row, a.arm): a for a in est.arms}

    def to_train(row: str, seeds: int) -> dict[tuple[str, str], int]:
        return {key: max(seeds - done[key], 0) for key in plan.configs if key[0] == row}

    def hours(runs: dict[tuple[str, str], int]) -> float | None:
        if any(arms[key].hours_per_run is None for key, count in runs.items() if count):
            return None
        return sum(arms[key].hours_per_run * count for key, count in runs.items() if count) * est.devices_per_run

    rows, counts = [], {}
    for row in spec.rows:
        sd = sds[row]
        if sd is None:
            rows.append(RowSeeds(row, None, None, None, None, None))
            counts.update(to_train(row, spec.seeds))
            continue
        priced = priced_seeds(sd, resolution.target, spec.seeds, resolution.max_seeds)
        runs = to_train(row, priced.run)
        counts.update(runs)
        rows.append(RowSeeds(row, sd, priced, hours(runs), hours(to_train(row, priced.needed)),
                             hours(to_train(row, priced.fewest.seeds))))
    at_resolution = dataclasses.replace(est, arms=tuple(dataclasses.replace(a, runs_to_train=counts[a.row, a.arm])
                                                        for a in est.arms))
    return ResolutionPrice(resolution.target, spec.seeds, resolution.max_seeds, source, tuple(rows), at_resolution)



def format_price(price: ResolutionPrice) -> list[str]:
    est = price.estimate
    device = est.device
    H = f"±{price.resolution:g}"
    lines = [f"resolution: each row's YOLOR − baseline to a 95% interval of {H} AP (box AP; Mask R-CNN box and "
             f"mask AP, the larger N), Stein's two-stage rule: a pilot of {price.pilot} seeds (--seeds) fixes the "
             f"seeds N, at most {price.max_seeds} (--max-seeds)",
             f"sd of the paired differences: {price.source}",
             f"  {'row':<15} {'sd (AP)':>7} {'seeds N':>7} {'run':>4} {device + ' time to train':>20}   "
             f"{'fewest N (pilot)':<20} {device + ' time':>18}"]
    for r in price.rows:
        if r.seeds is None:
            lines.append(f"  {r.row:<15} {'-':>7}  not priced: no sd measured for this row (it needs 2 seeds with "
                         "both arms); its pilot's runs are counted; pass --assume-sd S to price it")
            continue
        to_train, fewest = device_time_text(r.hours, device), device_time_text(r.fewest_hours, device)
        lines.append(f"  {r.row:<15} {r.sd:>7.3g} {r.seeds.needed:>7} {r.seeds.run:>4} {to_train:>20}   "
                     f"{fewest_text(r.seeds):<20} {fewest:>18}")
    for r in price.rows:
        text = cap_text(r.seeds) if r.seeds is not None else None
        if text:
            more = None if r.hours is None else r.needed_hours - r.hours
            lines.append(f"  {r.row}: {text}" + ("" if more is None else f"; its {r.seeds.needed - r.seeds.run} "
                                                 f"more seeds would cost {device_time_text(more, device)}"))
    if est.device_hours is None:
        lines.append("  no device-hours: pass --calibrate N or --seconds-per-iter ROW=S for every row")
    else:
        lines.append(f"estimate at the resolution: {totals_text(est)}")
    lines.append("  (N = max(pilot, ⌈(t(0.975, pilot−1) x sd / H)²⌉); a row's sd comes out of its pilot when it runs: "
                 "these are the seeds if it comes out as above)")
    return lines
