"""Paired differences with a 95% interval (paired t, S-1 degrees of freedom): is a
variant's difference to the baseline beyond seed noise? No torch: ``table`` uses it.
The t quantiles come from scipy, imported when first asked for (``table`` loads this
module and should not pay for ``scipy.stats`` unless it prints an interval)."""
from __future__ import annotations

import functools
import math
import operator
import statistics
from dataclasses import dataclass

METHOD = "paired t, 95%, S-1 degrees of freedom (S seeds, the same seed for variant and baseline)"


@functools.lru_cache(maxsize=None)
def t975(df: int) -> float:
    """Student's t 0.975 quantile (two-sided 95%) at ``df`` degrees of freedom; cached, since
    a procedure asks for the same few dfs over and over. Any integer type (numpy's too)."""
    if isinstance(df, bool) or not hasattr(df, "__index__") or operator.index(df) < 1:
        raise ValueError(f"t quantiles need an int >= 1 degrees of freedom, got {df!r}")
    from scipy.stats import t

    return float(t.ppf(0.975, operator.index(df)))


@dataclass(frozen=True)
class PairedDifference:
    mean: float
    sd: float  # of the per-seed differences
    low: float
    high: float
    df: int

    @property
    def within_noise(self) -> bool:
        """The interval holds 0: the seeds cannot tell the variant from the baseline."""
        return self.low <= 0.0 <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def paired_difference(variant: list[float], baseline: list[float]) -> PairedDifference:
    """``variant[i] - baseline[i]`` per seed i: mean and its 95% paired-t interval."""
    if len(variant) != len(baseline) or len(variant) < 2:
        raise ValueError(f"a paired interval needs >= 2 seeds on both sides, got {len(variant)} and {len(baseline)}")
    diffs = [v - b for v, b in zip(variant, baseline)]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    df = len(diffs) - 1
    half = t975(df) * sd / math.sqrt(len(diffs))
    return PairedDifference(mean, sd, mean - half, mean + half, df)


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
