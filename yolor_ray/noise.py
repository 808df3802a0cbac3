"""Paired differences with a 95% interval (paired t, S-1 degrees of freedom): is a
variant's difference to the baseline beyond seed noise? No torch: ``table`` uses it."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Student's t, two-sided 95% (the 0.975 quantile), by degrees of freedom; normal beyond 30.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042}
METHOD = "paired t, 95%, S-1 degrees of freedom (S seeds, the same seed for variant and baseline)"


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


def paired_difference(variant: list[float], baseline: list[float]) -> PairedDifference:
    """``variant[i] - baseline[i]`` per seed i: mean and its 95% paired-t interval."""
    if len(variant) != len(baseline) or len(variant) < 2:
        raise ValueError(f"a paired interval needs >= 2 seeds on both sides, got {len(variant)} and {len(baseline)}")
    diffs = [v - b for v, b in zip(variant, baseline)]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    df = len(diffs) - 1
    half = T975.get(df, 1.960) * sd / math.sqrt(len(diffs))
    return PairedDifference(mean, sd, mean - half, mean + half, df)


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
