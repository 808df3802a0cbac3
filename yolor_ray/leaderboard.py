"""What a sweep leaves behind: every trial's results.json, a leaderboard, a comparison
plot and the best variant as a config file."""
from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING

from yolor_ray import config as cfglib
from yolor_ray.results import RESULTS_FILE, figure_png
from yolor_ray.space import label_of
from yolor_ray.storage import StorageSpec, open_storage

if TYPE_CHECKING:
    from yolor_ray.sweep import PreparedSweep

log = logging.getLogger("yolor_ray")

LEADERBOARD_MD = "leaderboard.md"
TRIALS_PNG = "trials.png"
BEST_CONFIG = "best_config.py"
STATUS_ORDER = {"completed": 0, "stopped": 1, "error": 2}


def write_sweep_results(plan: PreparedSweep, grid) -> dict:
    """Finish every trial's results.json, then the leaderboard (written last: a sweep
    with a leaderboard is complete), the comparison plot and the best config."""
    from yolor_ray.sweep import LEADERBOARD_FILE

    runs = open_storage(StorageSpec(plan.trial_spec.storage, plan.trial_spec.s3_endpoint))
    entries = [_entry(plan, runs, result) for result in grid]
    entries = rank(entries, plan.spec.metric, plan.spec.mode)
    board = dict(sweep=plan.name, location=plan.location, config=str(plan.spec.train.config),
                 metric=plan.spec.metric, mode=plan.spec.mode, search=plan.search, space=plan.space.to_config(),
                 early_stopping=plan.spec.early_stopping, epochs=plan.epochs, trials=entries)
    best = next((e for e in entries if e["status"] != "error"), None)
    if best is not None:
        plan.storage.write_bytes(best_config_text(plan, best).encode(), plan.name, BEST_CONFIG)
        board["best_config"] = plan.storage.location(plan.name, BEST_CONFIG)
    plan.storage.write_bytes(plot_trials(entries, plan.spec.metric, plan.epochs), plan.name, TRIALS_PNG)
    plan.storage.write_bytes(format_leaderboard(board).encode(), plan.name, LEADERBOARD_MD)
    plan.storage.write_bytes(json.dumps(board, indent=2).encode(), plan.name, LEADERBOARD_FILE)
    return board


def _entry(plan: PreparedSweep, runs, result) -> dict:
    """One trial's leaderboard entry; writes its results.json if its run could not."""
    from yolor_ray.registry import RUN_STATE_FILE
    from yolor_ray.sweep import trial_for
    from yolor_ray.train import latest_checkpoint, prepare_run, write_results

    metrics = result.metrics or {}
    variant = {k: v for k, v in (result.config or {}).items()}
    trial_id = metrics.get("trial_id")
    entry = dict(trial=trial_id, variant=variant, label=label_of(variant), status="error", run=None, epochs_run=0,
                 history=[], metrics={})
    if result.error is not None or trial_id is None:
        entry["error"] = str(result.error or "no result reported").strip().splitlines()[-1][:500]
        return entry
    entry["run"] = runs.location(trial_id)
    text = runs.read_text(trial_id, RESULTS_FILE)
    if text is None:
        # Stopped by the scheduler: the trial's run ended with its process, so its
        # record comes from its latest checkpoint.
        checkpoint = latest_checkpoint(runs, trial_id)
        if checkpoint is None:
            entry["error"] = "stopped before its first checkpoint"
            return entry
        run = prepare_run(trial_for(plan.trial_spec, variant, plan.base_implicit, trial_id), plan.data)
        state = json.loads(runs.read_text(trial_id, checkpoint, RUN_STATE_FILE))
        finished = bool(state["history"]) and state["history"][-1]["epoch"] == plan.epochs
        record = write_results(run, checkpoint, wall_time_s=float(metrics.get("time_total_s", 0.0)),
                               status="completed" if finished else "stopped")
    else:
        record = json.loads(text)
    entry.update(status=record["status"], epochs_run=len(record["history"]), history=record["history"],
                 metrics=record["metrics"], restarts=record["restarts"], wall_time_s=record["wall_time_s"])
    entry.pop("error", None)
    return entry


def rank(entries: list[dict], metric: str, mode: str) -> list[dict]:
    """Sorted by the metric's last value (mode max: highest first); errors last."""
    sign = -1 if mode == "max" else 1

    def key(entry):
        value = entry["metrics"].get(metric)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (entry["status"] == "error", missing, sign * value if not missing else 0.0)

    ranked = sorted(entries, key=key)
    for position, entry in enumerate(ranked, 1):
        entry["rank"] = position
        values = [h[metric] for h in entry["history"] if metric in h]
        entry["best"] = (max if mode == "max" else min)(values) if values else None
    return ranked


def format_leaderboard(board: dict) -> str:
    metric = board["metric"]
    lines = [f"# Sweep {board['sweep']}", "",
             f"{board['config']}, {board['search']} search, "
             f"{'ASHA on' if board.get('early_stopping', True) else 'no early stopping, ranked by'} "
             f"`{metric}` ({board['mode']}), "
             f"{board['epochs']} epochs per completed trial.", "",
             f"| rank | trial | variant | status | epochs | {metric} | best | AP50 | AP75 |",
             "| --: | :-- | :-- | :-- | --: | --: | --: | --: | --: |"]
    prefix = metric.rsplit("_", 1)[0] if metric.startswith("coco/") else "coco/bbox"
    for e in board["trials"]:
        m = e["metrics"]
        cells = [str(e["rank"]), e["trial"] or "-", e["label"] or "-", e["status"],
                 f"{e['epochs_run']}/{board['epochs']}", _num(m.get(metric)), _num(e.get("best")),
                 _num(m.get(f"{prefix}_mAP_50")), _num(m.get(f"{prefix}_mAP_75"))]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [e for e in board["trials"] if e["status"] == "error"]
    for e in errors:
        lines.append(f"\n{e['trial'] or e['label']}: {e.get('error')}")
    if board.get("best_config"):
        lines += ["", f"Best variant as a config: `{board['best_config']}`"]
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def plot_trials(entries: list[dict], metric: str, epochs: int) -> bytes:
    """The metric per epoch of every trial; stopped trials dashed, ending in an x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for entry in entries:
        points = [(h["epoch"], h[metric]) for h in entry["history"] if metric in h]
        if not points:
            continue
        stopped = entry["status"] == "stopped"
        line, = ax.plot(*zip(*points), linestyle="--" if stopped else "-", marker="o", markersize=3,
                        label=f"#{entry['rank']} {entry['label']}" + (" (stopped)" if stopped else ""))
        if stopped:
            ax.plot(*points[-1], marker="x", markersize=10, color=line.get_color())
    ax.set(title=f"{metric} per epoch, all trials", xlabel="epoch", ylabel=metric, xlim=(0.5, epochs + 0.5))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="best")
    return figure_png(fig)


def best_config_text(plan: PreparedSweep, best: dict) -> str:
    """The swept config with the best variant's settings: ready for ``yolor-ray train``
    (the sweep's --data / --small / --epochs are not baked in: pass them again, or not)."""
    from yolor_ray.sweep import LR_KEY, trial_for

    spec = trial_for(plan.trial_spec, best["variant"], plan.base_implicit, "best")
    cfg = cfglib.load_config(spec.config, spec.cfg_options)
    cfglib.set_implicit(cfg, spec.implicit)
    metric = plan.spec.metric
    header = [f"# Best variant of sweep {plan.name} ({plan.location}): trial {best['trial']}",
              f"# {best['label']}",
              f"# {metric} = {best['metrics'].get(metric)} after {best['epochs_run']} epoch(s)",
              f"# Made from {plan.spec.train.config}"
              + (f" with {LR_KEY}={spec.cfg_options[LR_KEY]}" if LR_KEY in spec.cfg_options else ""),
              "# Train it: yolor-ray train best_config.py [--data DIR --small ...]", ""]
    return "\n".join(header) + cfg.pretty_text
