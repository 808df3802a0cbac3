"""A forest plot of paired comparisons: ``reproduce.png`` beside ``reproduce.json`` and
``confirmation.png`` beside ``confirmation.json`` (``layout``).

Per row and metric (a confirmation: per variant) the paired difference with its 95% interval,
the zero line, ±H where the comparisons ran to a resolution, and for a reproduction the difference
the reference table claims, as a marker. In AP points: a reproduction's differences are in % already,
a confirmation's COCO metric is a fraction and is scaled by 100. matplotlib's object API (a
``Figure``, drawn by the Agg canvas), as every other plot of the project; no torch.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.figure import Figure

from yolor_ray.records import Confirmation, PairedMetric, Reproduction

INTERVALS_GID = "intervals"  # the LineCollection of the intervals drawn: one segment per comparison


@dataclass(frozen=True)
class ForestRow:
    """One comparison: its label, the paired difference and its interval (None: fewer than two
    pairs), and the difference the reference table claims (None: no claim)."""

    label: str
    mean: float | None
    low: float | None
    high: float | None
    claimed: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class Forest:
    title: str
    unit: str  # the x axis: what the differences are in
    rows: tuple[ForestRow, ...]
    resolution: float | None = None  # H: the half-width the comparisons were run to


def _row(label: str, paired: PairedMetric, scale: float = 1.0, claimed: float | None = None) -> ForestRow:
    def scaled(value: float | None) -> float | None:
        return None if value is None else scale * value
    return ForestRow(label, scaled(paired.diff_mean), scaled(paired.low), scaled(paired.high), claimed)


def reproduction_forest(rep: Reproduction) -> Forest:
    """Every row and metric of a reproduction, the reference table's claimed difference beside each,
    ±H where it ran to a resolution."""
    rows = tuple(_row(f"{row.model} {m.label}", m.paired, claimed=m.reference_delta)
                 for row in rep.rows for m in row.metrics)
    return Forest(f"Reproduction {rep.name}: YOLOR − baseline, {len(rep.seeds)} seeds", "AP points (%)", rows,
                  rep.resolution)


def confirmation_forest(c: Confirmation) -> Forest:
    """Every confirmed variant against the baseline (no claim to compare with)."""
    coco = c.metric.startswith("coco/")  # a COCO AP is a fraction: AP points, as H is
    rows = tuple(_row(v.label, v.paired, 100.0 if coco else 1.0) for v in c.variants)
    return Forest(f"Confirmation: variant − baseline, {len(c.seeds)} seeds", f"{c.metric}"
                  + (" in AP points (%)" if coco else ""), rows, c.resolution)


def forest_figure(forest: Forest) -> Figure:
    """The plot: a comparison per line, top to bottom; its interval a horizontal bar (one segment
    each in the LineCollection with gid ``INTERVALS_GID``), the mean a dot, the claim a hollow diamond."""
    count = max(len(forest.rows), 1)
    fig = Figure(figsize=(10, 1.6 + 0.32 * count))
    ax = fig.subplots()
    ys = list(range(len(forest.rows), 0, -1))
    drawn = [(y, r) for y, r in zip(ys, forest.rows) if r.has_interval]
    ax.axvline(0.0, color="black", linewidth=0.8, zorder=1)
    if forest.resolution is not None:
        ax.axvspan(-forest.resolution, forest.resolution, color="tab:green", alpha=0.12, zorder=0,
                   label=f"±H = ±{forest.resolution:g}")
    intervals = ax.hlines([y for y, _ in drawn], [r.low for _, r in drawn], [r.high for _, r in drawn],
                          color="tab:blue", linewidth=2, zorder=2, label="95% interval")
    intervals.set_gid(INTERVALS_GID)
    ax.plot([r.mean for _, r in drawn], [y for y, _ in drawn], "o", color="tab:blue", zorder=3,
            label="paired difference")
    claims = [(y, r.claimed) for y, r in zip(ys, forest.rows) if r.claimed is not None]
    if claims:
        ax.plot([c for _, c in claims], [y for y, _ in claims], "D", color="tab:red", markerfacecolor="none",
                markersize=7, zorder=4, label="reference table's claim")  # hollow: the mean under it shows
    ax.set_yticks(ys, [r.label if r.has_interval else f"{r.label} (no interval)" for r in forest.rows])
    ax.set(title=forest.title, xlabel=forest.unit, ylim=(0.3, len(forest.rows) + 0.7))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it hides no interval
    return fig


def forest_png(forest: Forest) -> bytes:
    fig = forest_figure(forest)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
