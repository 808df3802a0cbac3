"""Durations and device time in the unit a person reads them in: ``42 s``, ``3.5 min``, ``2.1 h``,
``3.2 days``. Device time on GPUs stays in GPU-hours, the unit a cluster's budget is kept in;
on CPUs (a rehearsal, a small run) it takes the unit that fits, ``1.4 CPU-minutes``."""
from __future__ import annotations

import math

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# (below how many seconds, the unit's seconds, its short name, its long name): a minute and a half
# still reads best in seconds, 36 hours in hours
UNITS = ((1.5 * MINUTE, 1.0, "s", "seconds"), (1.5 * HOUR, MINUTE, "min", "minutes"),
         (2 * DAY, HOUR, "h", "hours"), (math.inf, DAY, "days", "days"))


def figure(value: float) -> str:
    """Three significant digits, without an exponent: ``0.0123``, ``4.56``, ``1,500``."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _scaled(seconds: float, longest: int) -> tuple[str, str, str]:
    """The figure in the first unit it is below (at most ``UNITS[longest]``), the unit's names."""
    for below, size, short, long in UNITS[:longest]:
        if seconds < below:
            return figure(seconds / size), short, long
    _, size, short, long = UNITS[longest]
    return figure(seconds / size), short, long


def duration_text(seconds: float) -> str:
    """``42 s`` under a minute and a half, then minutes, hours, and days past two days."""
    value, short, _ = _scaled(seconds, 3)
    return f"{value} {short}"


def device_time_text(hours: float | None, device: str) -> str:
    """Device time: ``12.5 GPU-hours``; a CPU's ``42 CPU-seconds``, ``3.5 CPU-minutes`` or ``2.1 CPU-hours``;
    ``-`` for none measured."""
    if hours is None:
        return "-"
    if device != "CPU":
        return f"{figure(hours)} {device}-hours"
    value, _, long = _scaled(hours * HOUR, 2)
    return f"{value} CPU-{long}"
