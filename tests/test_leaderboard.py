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


def test_a_sweeps_metric_and_mode_pick_the_checkpoints_its_trials_keep(shapes_dir, tmp_path, monkeypatch):
    """In-process trials through Tune's CheckpointConfig; TorchTrainer trials (and confirmation
    runs) through the trial spec each trial's RunTrainer is built from. A run outside a sweep
    keeps the best by bbox mAP."""
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train import driver
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import Checkpointing, RunSettings
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import prepare_sweep
    from yolor_ray.tune.trial import trial_for
    from yolor_ray.tune.tuner import in_actor_checkpoints

    from support.paths import ATSS

    train = RunSettings(data_root=shapes_dir, small=True, image_size=64, checkpoints=Checkpointing(keep=3),
                        storage=StorageSpec(str(tmp_path / "results")))
    plan = prepare_sweep(SweepSpec(config=ATSS, train=train, space=dict(placements=[["fpn"], ["pred"]]), trials=2,
                                   metric="train/loss", mode="min"))
    tune_config = in_actor_checkpoints(plan)["checkpoint_config"]
    assert (tune_config.checkpoint_score_attribute, tune_config.checkpoint_score_order,
            tune_config.num_to_keep) == ("train/loss", "min", 3)

    class Built(Exception):
        pass

    def record_the_trainer(*_args, run_config, **_kwargs):
        kept = run_config.checkpoint_config
        built.append((kept.checkpoint_score_attribute, kept.checkpoint_score_order, kept.num_to_keep))
        raise Built

    built = []
    monkeypatch.setattr(driver, "RunTrainer", record_the_trainer)
    trial = prepare_run(trial_for(plan.trial_spec, dict(placements="pred"), plan.base_implicit, "t1"), plan.inputs)
    single = prepare_run(train.for_run(ATSS), plan.inputs)
    for run in (trial, single):
        with pytest.raises(Built):
            driver._fit(run, (), None)
    assert built == [("train/loss", "min", 3), ("coco/bbox_mAP", "max", 3)]
    assert not (tmp_path / "results").exists()  # nothing written
