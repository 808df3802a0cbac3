"""A sweep's ranking (tune.leaderboard.rank): --mode max or min of --metric, trials without
the metric after those with it, failed trials last; each trial's best epoch by the mode."""
from __future__ import annotations

import math

import pytest

from yolor_ray.records import LeaderboardEntry
from yolor_ray.tune.leaderboard import rank


def _entry(trial: str, history: list, status: str = "completed") -> LeaderboardEntry:
    history = [{"epoch": i + 1, **({"m": v} if v is not None else {})} for i, v in enumerate(history)]
    return LeaderboardEntry(trial=trial, variant={}, label=trial, status=status, history=history,
                            metrics=dict(history[-1]) if history else {})


@pytest.mark.parametrize("mode, order, best", [
    ("max", ["high", "low"], dict(high=0.5, low=0.4)),  # by the last epoch's value
    ("min", ["low", "high"], dict(high=0.2, low=0.1)),
])
def test_trials_rank_by_the_mode_with_failures_last(mode, order, best):
    entries = [_entry("failed", [0.9], status="error"), _entry("none", [None]), _entry("low", [0.1, 0.4]),
               _entry("nan", [math.nan]), _entry("high", [0.2, 0.5], status="stopped")]
    ranked = rank(entries, "m", mode)
    trials = [e.trial for e in ranked]
    assert trials[:2] == order and set(trials[2:4]) == {"nan", "none"} and trials[4] == "failed"
    assert [e.rank for e in ranked] == [1, 2, 3, 4, 5]
    assert {e.trial: e.best for e in ranked if e.trial in best} == best
    assert next(e for e in ranked if e.trial == "none").best is None
