"""Seeds on demand: a paired difference answered to a stated resolution H (AP points) by
Stein's two-stage procedure, and priced before it runs.

A pilot of n0 seeds gives s0, the sd of its paired differences; the row then gets
N = max(n0, ceil((t(0.975, n0-1) x s0 / H)^2)) seeds in all (capped at ``max_seeds``), and its
interval is the mean of all N differences +- t(0.975, n0-1) x s0 / sqrt(N). N depends on s0
alone, and for normal differences the mean of N is independent of s0, so the interval covers
95% exactly, capped or not; its half-width is <= H whenever the cap was not hit. Re-estimating
the sd from the growing sample, or stopping once 0 leaves the interval, looks similar and
covers less (tests/test_resolution.py measures both).

Pure Python over ``noise``'s t quantiles, no Ray, no torch: the CLI's checks and a dry run's
prices load it on the driver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from yolor_ray.errors import UserError, require_int
from yolor_ray.noise import PairedDifference, t975

MIN_PILOT = 3  # t(0.975, 1) = 12.7: a pilot of 2 asks for ~160 x (s0 / H)^2 seeds
DEFAULT_MAX_SEEDS = 20  # --max-seeds
METHOD = ("Stein's two-stage paired t, 95%: n0 pilot seeds fix the seeds N and the interval's sd and "
          "n0-1 degrees of freedom; the mean over all N seeds")


class ResolutionError(UserError, ValueError):
    """A resolution, pilot, seed cap or assumed sd the procedure cannot use."""


def _is_sd(value: object) -> bool:
    """A finite number >= 0 (a bool is not one)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < math.inf


def check_resolution(resolution: float) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0 < resolution < math.inf:
        raise ResolutionError(f"--resolution must be a number of AP points > 0, got {resolution!r}")


def check_assumed_sd(sd: float) -> None:
    if not _is_sd(sd):
        raise ResolutionError(f"--assume-sd must be a number of AP points >= 0, got {sd!r}")


def check_plan(pilot: int, resolution: float, max_seeds: int) -> None:
    """The settings of a run to a resolution: H > 0, a pilot (``--seeds``) of at least
    ``MIN_PILOT``, a cap (``--max-seeds``) no smaller than the pilot."""
    check_resolution(resolution)
    require_int("--seeds", pilot, MIN_PILOT, ResolutionError,
                why=" with --resolution (the pilot's t(0.975, 1) = 12.7 would ask for ~160 x (sd / H)^2 seeds)")
    require_int("--max-seeds", max_seeds, pilot, ResolutionError, why=" (--seeds, the pilot, runs in full)")


@dataclass(frozen=True)
class SeedsNeeded:
    """What a pilot of ``pilot`` seeds with sd ``pilot_sd`` asks for: ``needed`` seeds in all
    (N), of which ``run`` (N, at most the cap) are run."""

    pilot: int
    pilot_sd: float
    resolution: float
    needed: int
    run: int

    @property
    def capped(self) -> bool:
        """The cap stopped short of N: the interval keeps its coverage but is wider than H."""
        return self.run < self.needed


def _t_seeds(pilot: int, sd: float, resolution: float) -> int:
    """ceil((t(0.975, pilot-1) x sd / H)^2): the seeds whose Stein half-width is <= H."""
    return math.ceil((t975(pilot - 1) * sd / resolution) ** 2)


def _needed(pilot: int, sd: float, resolution: float) -> int:
    return max(pilot, _t_seeds(pilot, sd, resolution))


def seeds_needed(pilot: int, pilot_sd: float, resolution: float, max_seeds: int) -> SeedsNeeded:
    """Stein's second stage: the seeds a row needs in all after its pilot, and those it runs."""
    check_plan(pilot, resolution, max_seeds)
    if not _is_sd(pilot_sd):
        raise ValueError(f"a pilot's sd is a finite number >= 0, got {pilot_sd!r}")
    needed = _needed(pilot, pilot_sd, resolution)
    return SeedsNeeded(pilot, pilot_sd, resolution, needed, min(needed, max_seeds))


@dataclass(frozen=True)
class SteinDifference(PairedDifference):
    """A paired difference over ``seeds`` seeds whose ``sd`` and ``df`` are the pilot's
    (``pilot`` seeds): Stein's interval, read like any other."""

    seeds: int
    pilot: int


def stein_interval(diffs: list[float], pilot: int, pilot_sd: float) -> SteinDifference:
    """The interval of a row run to a resolution: the mean of all its paired differences
    (``diffs``, the pilot's first) +- t(0.975, pilot-1) x ``pilot_sd`` / sqrt(len(diffs))."""
    require_int("pilot", pilot, MIN_PILOT, ResolutionError)
    if len(diffs) < pilot:
        raise ValueError(f"Stein's interval needs the pilot's {pilot} differences at least, got {len(diffs)}")
    if not _is_sd(pilot_sd):
        raise ValueError(f"a pilot's sd is a finite number >= 0, got {pilot_sd!r}")
    mean = math.fsum(diffs) / len(diffs)
    half = t975(pilot - 1) * pilot_sd / math.sqrt(len(diffs))
    return SteinDifference(mean, pilot_sd, mean - half, mean + half, pilot - 1, seeds=len(diffs), pilot=pilot)


def planned_seeds(assumed_sd: float, resolution: float, pilot: int) -> int:
    """The dry run's N: the seeds in all a pilot of ``pilot`` leads to if its sd comes out
    ``assumed_sd`` (uncapped; compare with ``--max-seeds``)."""
    check_assumed_sd(assumed_sd)
    check_resolution(resolution)
    require_int("--seeds", pilot, MIN_PILOT, ResolutionError, why=" with --resolution")
    return _needed(pilot, assumed_sd, resolution)


@dataclass(frozen=True)
class BestPilot:
    """The pilot that makes N smallest at an assumed sd: ``pilot`` (the smallest such) to
    ``last_pilot`` all lead to ``seeds`` seeds in all."""

    pilot: int
    last_pilot: int
    seeds: int

    @property
    def pilots(self) -> range:
        return range(self.pilot, self.last_pilot + 1)


def best_pilot(assumed_sd: float, resolution: float, max_pilot: int | None = None) -> BestPilot:
    """The pilot size from ``MIN_PILOT`` to ``max_pilot`` (None: any) with the fewest seeds in all.

    N(n0) = max(n0, a(n0)) with a(n0) = ceil((t(0.975, n0-1) x S / H)^2) never rising with n0: the
    smallest N is at the first n0 with a(n0) <= n0 (or at ``max_pilot``, if that comes first), and the
    pilots tied with it are the n0 below it with a(n0) equal to that N. Both are found by bisection,
    so a large S / H costs a few dozen quantiles, not one per candidate pilot."""
    planned_seeds(assumed_sd, resolution, MIN_PILOT)  # the checks
    require_int("max_pilot", max_pilot, MIN_PILOT, ResolutionError, optional=True)

    def need(n0: int) -> int:
        return _t_seeds(n0, assumed_sd, resolution)

    def first(low: int, high: int, holds) -> int:
        """The first n0 in [low, high] where ``holds`` (monotone: false, then true), given it holds at high."""
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if holds(middle) else (middle + 1, high)
        return low

    crossing = first(MIN_PILOT, max(MIN_PILOT, need(MIN_PILOT)), lambda n0: need(n0) <= n0)
    last = crossing if max_pilot is None else min(crossing, max_pilot)
    seeds = max(last, need(last))
    return BestPilot(first(MIN_PILOT, last, lambda n0: need(n0) <= seeds), last, seeds)


@dataclass(frozen=True)
class Resolution:
    """``--resolution H --max-seeds M`` (run each comparison to a half-width of H AP points) and the
    dry run's assumed sd (``--assume-sd S``, or ``--prior``: an earlier reproduction's or
    confirmation's measured sd per row): a part of a reproduction's and a sweep confirmation's
    spec. ``target`` None: the fixed number of seeds (``--seeds``), as without it."""

    target: float | None = None
    max_seeds: int = DEFAULT_MAX_SEEDS
    assume_sd: float | None = None
    prior: str | None = None

    def check(self, pilot: int) -> None:
        """Every rule, given the pilot (``--seeds``); one line naming the options."""
        if self.target is None:
            if self.max_seeds != DEFAULT_MAX_SEEDS or self.assume_sd is not None or self.prior is not None:
                raise ResolutionError("--max-seeds, --assume-sd and --prior go with --resolution H")
            return
        check_plan(pilot, self.target, self.max_seeds)
        if self.assume_sd is not None and self.prior is not None:
            raise ResolutionError("--assume-sd gives the sd, --prior measures it from an earlier run: pass one")
        if self.assume_sd is not None:
            check_assumed_sd(self.assume_sd)
        if self.prior is not None and (not isinstance(self.prior, str) or not self.prior):
            raise ResolutionError(f"--prior must name a reproduction or a sweep, got {self.prior!r}")

    @property
    def priced(self) -> bool:
        """The dry run prices the resolution from an sd (assumed, or an earlier run's)."""
        return self.assume_sd is not None or self.prior is not None


@dataclass(frozen=True)
class PricedSeeds:
    """What a dry run says of one comparison whose paired differences have sd ``sd``: a pilot of
    ``pilot`` leads to ``needed`` seeds in all (N), ``run`` of them under the cap ``max_seeds``;
    ``fewest``: the pilot that makes N smallest, whatever the cap."""

    sd: float
    resolution: float
    pilot: int
    max_seeds: int
    needed: int
    fewest: BestPilot

    @property
    def run(self) -> int:
        return min(self.needed, self.max_seeds)

    @property
    def capped(self) -> bool:
        return self.run < self.needed

    @property
    def half_width(self) -> float:
        """The interval's half-width at ``run`` seeds if the pilot's sd comes out ``sd``: <= H unless capped."""
        return t975(self.pilot - 1) * self.sd / math.sqrt(self.run)


def priced_seeds(sd: float, resolution: float, pilot: int, max_seeds: int) -> PricedSeeds:
    """A comparison's seeds at an assumed (or an earlier run's measured) sd, for a dry run."""
    check_plan(pilot, resolution, max_seeds)
    return PricedSeeds(sd, resolution, pilot, max_seeds, planned_seeds(sd, resolution, pilot),
                       best_pilot(sd, resolution))


def _pilots(best: BestPilot) -> str:
    return f"pilot {best.pilot}" + (f" to {best.last_pilot}" if best.last_pilot > best.pilot else "")


def fewest_text(priced: PricedSeeds) -> str:
    """'12 (pilot 9 to 12)': the fewest seeds in all and the pilots that lead to them."""
    return f"{priced.fewest.seeds} ({_pilots(priced.fewest)})"


def cap_text(priced: PricedSeeds) -> str | None:
    """One sentence where ``--max-seeds`` stops short of H (None where it does not): what N would
    be needed, what the cap reaches, and whether another pilot would fit under the cap."""
    if not priced.capped:
        return None
    fewest, cap, H = priced.fewest, priced.max_seeds, f"±{priced.resolution:g}"
    text = (f"--max-seeds {cap} cannot reach {H} from a pilot of {priced.pilot}: it needs {priced.needed} seeds; "
            f"{cap} give ±{priced.half_width:.3g}")
    if fewest.seeds <= cap:
        return text + f" (a {_pilots(fewest).replace('pilot', 'pilot of', 1)} would need {fewest.seeds})"
    return text + f"; no pilot reaches {H} under {cap} seeds (the fewest is {fewest_text(priced)})"
