"""What a sweep leaves behind, besides its trials' runs: a leaderboard (JSON and
Markdown), a comparison plot and the best variant as a config file.

Everything here is read from what the trials left (their results.json, through
``yolor_ray.records``) and from Tune's results; nothing is built or checked again.
"""
from __future__ import annotations

import dataclasses
import logging
import math

from matplotlib.figure import Figure

from yolor_ray.config.edits import set_implicit
from yolor_ray.config.load import load_config
from yolor_ray.layout import BEST_CONFIG, LEADERBOARD_FILE, LEADERBOARD_MD, RESULTS_FILE, TRIALS_PNG
from yolor_ray.records import Confirmation, Leaderboard, LeaderboardEntry, RunResults
from yolor_ray.storage import open_storage
from yolor_ray.table import format_confirmation
from yolor_ray.train.outputs import figure_png
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.trial import LR_KEY, trial_for
from yolor_ray.tune.variant import label_of

log = logging.getLogger("yolor_ray")


def ranked_entries(plan: PreparedSweep, grid) -> list[LeaderboardEntry]:
    """Every trial's entry, from its results.json, ranked by the sweep's metric."""
    runs = open_storage(plan.trial_spec.storage)
    return rank([entry_of(runs, result) for result in grid], plan.spec.metric, plan.spec.mode)


def write_sweep_results(plan: PreparedSweep, entries: list[LeaderboardEntry],
                        confirmation: Confirmation | None = None) -> Leaderboard:
    """The leaderboard (written last: a sweep with a leaderboard is complete), the
    comparison plot and the best config, from the ranked entries (:func:`ranked_entries`)."""
    warm = plan.trial_spec.warm_start
    board = Leaderboard(sweep=plan.name, location=plan.location, config=str(plan.spec.config),
                        metric=plan.spec.metric, mode=plan.spec.mode, search=plan.search,
                        space=plan.space.to_config(), early_stopping=plan.spec.early_stopping, epochs=plan.epochs,
                        trials=entries, warm_start=warm.from_baseline if warm else None,
                        confirmation=confirmation)
    best = next((e for e in entries if e.status != "error"), None)
    if best is not None:
        plan.storage.write_bytes(best_config_text(plan, best).encode(), plan.name, BEST_CONFIG)
        board.best_config = plan.storage.location(plan.name, BEST_CONFIG)
    plan.storage.write_bytes(plot_trials(entries, plan.spec.metric, plan.epochs), plan.name, TRIALS_PNG)
    plan.storage.write_bytes(format_leaderboard(board).encode(), plan.name, LEADERBOARD_MD)
    plan.storage.write_bytes(board.to_json().encode(), plan.name, LEADERBOARD_FILE)
    return board


def entry_of(runs, result) -> LeaderboardEntry:
    """One trial's entry: Tune's result (variant, error) and the trial run's results.json."""
    metrics = result.metrics or {}
    variant = dict(result.config or {})
    trial_id = metrics.get("trial_id")
    entry = LeaderboardEntry(trial=trial_id, variant=variant, label=label_of(variant))
    if result.error is not None or trial_id is None:
        entry.error = str(result.error or "no result reported").strip().splitlines()[-1][:500]
        return entry
    entry.run = runs.location(trial_id)
    text = runs.read_text(trial_id, RESULTS_FILE)
    if text is None:
        entry.error = "stopped before its first checkpoint"
        return entry
    record = RunResults.from_json(text)
    return dataclasses.replace(entry, status=record.status, epochs_run=len(record.history), history=record.history,
                               metrics=record.metrics, restarts=record.restarts, wall_time_s=record.wall_time_s,
                               before_training=record.before_training)


def rank(entries: list[LeaderboardEntry], metric: str, mode: str) -> list[LeaderboardEntry]:
    """Sorted by the metric's last value (mode max: highest first); errors last."""
    sign = -1 if mode == "max" else 1

    def key(entry: LeaderboardEntry):
        value = entry.metrics.get(metric)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (entry.status == "error", missing, sign * value if not missing else 0.0)

    ranked = sorted(entries, key=key)
    for position, entry in enumerate(ranked, 1):
        values = [h[metric] for h in entry.history if metric in h]
        entry.rank = position
        entry.best = (max if mode == "max" else min)(values) if values else None
    return ranked


def format_leaderboard(board: Leaderboard) -> str:
    metric = board.metric
    lines = [f"# Sweep {board.sweep}", "",
             f"{board.config}, {board.search} search, "
             f"{'ASHA on' if board.early_stopping else 'no early stopping, ranked by'} "
             f"`{metric}` ({board.mode}), "
             f"{board.epochs} epochs per completed trial"
             + (f", each fine-tuned from `{board.warm_start}` (start: the metric before its first epoch)"
                if board.warm_start else "") + ".", "",
             f"| rank | trial | variant | status | epochs | {metric} | best | AP50 | AP75 |"
             + (" start |" if board.warm_start else ""),
             "| --: | :-- | :-- | :-- | --: | --: | --: | --: | --: |" + (" --: |" if board.warm_start else "")]
    prefix = metric.rsplit("_", 1)[0] if metric.startswith("coco/") else "coco/bbox"
    for e in board.trials:
        m = e.metrics
        cells = [str(e.rank), e.trial or "-", e.label or "-", e.status, f"{e.epochs_run}/{board.epochs}",
                 _num(m.get(metric)), _num(e.best), _num(m.get(f"{prefix}_mAP_50")), _num(m.get(f"{prefix}_mAP_75"))]
        if board.warm_start:
            cells.append(_num(e.before_training.get(metric)))
        lines.append("| " + " | ".join(cells) + " |")
    for e in board.trials:
        if e.status == "error":
            lines.append(f"\n{e.trial or e.label}: {e.error}")
    if board.best_config:
        lines += ["", f"Best variant as a config: `{board.best_config}`"]
    if board.confirmation:
        lines += ["", *format_confirmation(board.confirmation)]
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def plot_trials(entries: list[LeaderboardEntry], metric: str, epochs: int) -> bytes:
    """The metric per epoch of every trial; stopped trials dashed, ending in an x."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for entry in entries:
        points = [(h["epoch"], h[metric]) for h in entry.history if metric in h]
        if not points:
            continue
        stopped = entry.status == "stopped"
        line, = ax.plot(*zip(*points), linestyle="--" if stopped else "-", marker="o", markersize=3,
                        label=f"#{entry.rank} {entry.label}" + (" (stopped)" if stopped else ""))
        if stopped:
            ax.plot(*points[-1], marker="x", markersize=10, color=line.get_color())
    ax.set(title=f"{metric} per epoch, all trials", xlabel="epoch", ylabel=metric, xlim=(0.5, epochs + 0.5))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="best")
    return figure_png(fig)


def best_config_text(plan: PreparedSweep, best: LeaderboardEntry) -> str:
    """The swept config with the best variant's settings: ready for ``yolor-ray train``
    (the sweep's --data / --small / --epochs are not baked in: pass them again, or not)."""
    spec = trial_for(plan.trial_spec, best.variant, plan.base_implicit, "best")
    cfg = load_config(spec.config, spec.cfg_options)
    set_implicit(cfg, spec.implicit)
    metric = plan.spec.metric
    header = [f"# Best variant of sweep {plan.name} ({plan.location}): trial {best.trial}",
              f"# {best.label}",
              f"# {metric} = {best.metrics.get(metric)} after {best.epochs_run} epoch(s)",
              f"# Made from {plan.spec.config}"
              + (f" with {LR_KEY}={spec.cfg_options[LR_KEY]}" if LR_KEY in spec.cfg_options else ""),
              "# Train it: yolor-ray train best_config.py [--data DIR --small ...]", ""]
    return "\n".join(header) + cfg.pretty_text
