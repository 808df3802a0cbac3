"""The driver's lines of runs trained side by side (a sweep's trials, a reproduction's or a
confirmation's runs), without Ray: their words (train.lines), when each is printed
(paired.run_lines) and the Tune callback that feeds them (paired.progress, fed plain objects
as Tune's trials). The real runs' lines: test_tune (a sweep), test_reproduce (a reproduction)."""
import os
from types import SimpleNamespace

import pytest

from yolor_ray.paired.run_lines import EPOCH_LINES_PER_MINUTE, STATUS_EVERY_S, LinesPlan, RunLines
from yolor_ray.train.lines import (
    Tally,
    run_ended_line,
    run_failed_line,
    run_started_line,
    status_line,
    tensorboard_hint,
)

from support.lines import epoch_lines, status_counts


def record(epoch: int, ap: float | None = None, seconds: float = 10.0) -> dict:
    return {"epoch": epoch, "train/loss": 1.0 / epoch, "epoch_time_s": seconds,
            **({"coco/bbox_mAP": ap} if ap is not None else {})}


def test_the_words_of_each_line():
    assert run_started_line("trial t_01", "lr=0.02 placements=fpn") == "trial t_01 started: lr=0.02 placements=fpn"
    assert run_started_line("run atss-yolor-seed0", attempt=2) == "run atss-yolor-seed0 started (attempt 2)"
    ap = {"coco/bbox_mAP": 0.3123}
    assert run_ended_line("trial t_00001", 3, 3, ap, 161) == "trial t_00001 done: 3/3 epochs, bbox_mAP 0.312, 2:41"
    assert run_ended_line("trial t_00002", 1, 3, {}, 52, stopped_early=True) == (
        "trial t_00002 stopped early at epoch 1/3, bbox_mAP -, 0:52")
    assert run_ended_line("run r", 0, 2, {}, 3) == "run r done: no epoch left to train, 0:03"
    assert run_ended_line("trial t", 2, 2, {"coco/bbox_mAP_50": 0.5}, 1, metric="coco/bbox_mAP_50") == (
        "trial t done: 2/2 epochs, bbox_mAP_50 0.500, 0:01")
    assert run_failed_line("run f", 1, 2, 35, "RuntimeError: planted failure") == (
        "run f failed at epoch 1/2 after 0:35: RuntimeError: planted failure")
    assert run_failed_line("run f", 0, 2, 5, "OSError: x", restarting=True) == (
        "run f failed before its first epoch after 0:05, restarting: OSError: x")
    assert status_line("trial", Tally(done=2, running=1, pending=0, failed=0, stopped=1), 190, 65) == (
        "trials: 2 done, 1 stopped early, 1 running, 0 pending, 0 failed  elapsed 3:10  ETA 1:05")
    assert status_line("run", Tally(pending=4), 5, None) == (
        "runs: 0 done, 0 running, 4 pending, 0 failed  elapsed 0:05  ETA -")
    assert tensorboard_hint("/data/results/grid4") == "TensorBoard: tensorboard --logdir /data/results/grid4"
    assert "yolor-ray pull" in tensorboard_hint("s3://bucket/runs/grid4")


def test_few_runs_print_every_epoch_then_how_they_ended():
    lines = RunLines(LinesPlan(noun="run", total=3, epochs=2, location="/r", at_a_time=2), now=0.0)
    out = lines.started("a", 0.0) + lines.started("b", 1.0)
    out += lines.reported("a", record(1, 0.1), 30.0) + lines.reported("b", record(1, 0.2), 31.0)
    out += lines.reported("a", record(2, 0.3), 60.0) + lines.ended("a", 60.5)
    out += lines.failed("b", "RuntimeError: planted failure", 62.0)
    assert out[:2] == ["run a started", "run b started"]
    assert out[2] == "run a  epoch 1/2  loss 1.0000  bbox_mAP 0.100  elapsed 0:30  ETA 0:30  restarts 0"
    assert out[3].startswith("run b  epoch 1/2") and out[4].startswith("run a  epoch 2/2")
    assert out[5] == "run a done: 2/2 epochs, bbox_mAP 0.300, 1:00"
    # After an end: a status line (none came in the last 30 s); run c never started.
    # epochs left: 1 of b, 2 of c; 10 s each, 2 at a time
    assert out[6] == "runs: 1 done, 1 running, 1 pending, 0 failed  elapsed 1:00  ETA 0:15"
    assert out[7] == "run b failed at epoch 1/2 after 1:01: RuntimeError: planted failure"
    assert lines.tally() == Tally(done=1, running=0, pending=1, failed=1)
    assert len(out) == 8  # no second status line 1.5 s after the first


def test_many_runs_at_once_thin_their_epoch_lines_but_keep_each_last_one():
    runs, epochs, epoch_s = 40, 30, 10.0
    lines = RunLines(LinesPlan(noun="run", total=runs, epochs=epochs, location="/r", at_a_time=runs), now=0.0)
    out = []
    for i in range(runs):
        out += lines.started(f"r{i}", 0.0)
    for epoch in range(1, epochs + 1):
        for i in range(runs):
            out += lines.reported(f"r{i}", record(epoch, 0.1, epoch_s), epoch * epoch_s + i * 0.01)
    per_epoch = epoch_lines(out)
    minutes = epochs * epoch_s / 60
    # Each run's last epoch always; before it, about EPOCH_LINES_PER_MINUTE in a minute, every run's turn.
    assert sum(line.split()[3] == f"{epochs}/{epochs}" for line in per_epoch) == runs
    assert runs < len(per_epoch) - runs <= EPOCH_LINES_PER_MINUTE * minutes
    assert {line.split()[1] for line in per_epoch if line.split()[3] != f"{epochs}/{epochs}"} == {
        f"r{i}" for i in range(runs)}


def test_a_status_line_every_few_minutes_with_the_eta_from_the_epochs_times():
    plan = LinesPlan(noun="trial", total=4, epochs=3, location="/r", at_a_time=2)
    lines = RunLines(plan, now=0.0)
    lines.started("t1", 0.0)
    lines.started("t2", 0.0)
    assert lines.tick(60.0) == []
    lines.reported("t1", record(1, 0.1, seconds=100.0), 100.0)
    lines.reported("t2", record(1, 0.1, seconds=120.0), 120.0)
    [line] = lines.tick(STATUS_EVERY_S + 1)
    # epochs left: 2 + 2 of the running, 3 + 3 of the pending; median epoch 110 s; 2 at a time
    assert line == "trials: 0 done, 2 running, 2 pending, 0 failed  elapsed 5:01  ETA 9:10"
    assert status_counts(line) == dict(done=0, running=2, pending=2, failed=0)
    assert lines.tick(STATUS_EVERY_S + 2) == []  # not again at once


def test_what_tune_says_of_runs_this_driver_did_not_see_and_a_restart():
    lines = RunLines(LinesPlan(noun="trial", total=5, epochs=3, location="/r", at_a_time=2), now=0.0)
    lines.observe("done-before", "TERMINATED", 3)
    lines.observe("stopped-before", "TERMINATED", 1)
    lines.observe("failed-before", "ERROR", 2)
    lines.observe("waiting", "PENDING")
    lines.started("t", 0.0)
    lines.observe("t", "PENDING")  # Tune calls on_trial_start before the trial is RUNNING
    assert lines.tally() == Tally(done=1, running=1, pending=1, failed=1, stopped=1)
    assert lines.failed("t", "RayActorError: died", 5.0, restarting=True) == [
        "trial t failed before its first epoch after 0:05, restarting: RayActorError: died"]
    assert lines.tally().pending == 2
    assert lines.started("t", 6.0) == ["trial t started (attempt 2)"]
    # A resumed run's first report is its first epoch here: the ETA counts from there.
    [line] = lines.reported("t", record(3, 0.2), 36.0)
    assert "epoch 3/3" in line and "elapsed 0:30  ETA 0:00" in line
    assert lines.ended("t", 37.0)[0] == "trial t done: 3/3 epochs, bbox_mAP 0.200, 0:31"


def test_per_run_epochs_and_the_trial_callback(tmp_path, capsys):
    from yolor_ray.paired.progress import TrialLines, error_reason

    error_file = tmp_path / "error.txt"
    error_file.write_text("Failure # 1 (occurred at 2026-01-01)\nray::ImplicitFunc.train() (pid=1)\n"
                          "  File \"x.py\", line 3, in f\nRuntimeError: planted failure\n\n")
    assert error_reason(str(error_file)) == "RuntimeError: planted failure"
    assert error_reason(None).startswith("no reason recorded")

    plan = LinesPlan(noun="run", total=2, epochs=2, location="/r/rep", epochs_of={"long": 4}, at_a_time=2)
    callback = TrialLines(plan, name_key="run")

    def trial(name, error_file=None):
        return SimpleNamespace(trial_id=f"id-{name}", config={"run": name}, evaluated_params={"run": name},
                               status="PENDING", last_result=None, error_file=error_file)

    short, long_ = trial("short"), trial("long", error_file=str(error_file))
    trials = [short, long_]
    callback.setup(total_num_samples=2)
    callback.on_trial_start(0, trials, short)
    callback.on_trial_start(0, trials, long_)
    short.status = long_.status = "RUNNING"
    callback.on_trial_result(1, trials, short, record(2, 0.25))
    callback.on_trial_complete(2, trials, short)
    callback.on_trial_result(3, trials, long_, record(1, 0.1))  # its line waits: a second ago it started
    callback.on_trial_error(4, trials, long_)
    callback.on_experiment_end(trials)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "TensorBoard: tensorboard --logdir /r/rep"
    assert out[1:3] == ["run short started", "run long started"]
    assert out[3].startswith("run short  epoch 2/2") and out[4].startswith("run short done: 2/2 epochs")
    # its own epochs
    assert out[5].startswith("run long failed at epoch 1/4 after ") and out[5].endswith("RuntimeError: planted failure")
    assert len(out) == 7
    assert status_counts(out[-1]) == dict(done=1, running=0, pending=0, failed=1)

    sweep = TrialLines(LinesPlan(noun="trial", total=1, epochs=3, location="/r/s"))
    variant = SimpleNamespace(trial_id="ab_00000", config={"lr": 0.02, "placements": "fpn"},
                              evaluated_params={"lr": 0.02, "placements": "fpn"}, status="PENDING", last_result=None)
    sweep.setup()
    sweep.on_trial_start(0, [variant], variant)
    assert capsys.readouterr().out.splitlines()[-1] == "trial ab_00000 started: lr=0.02 placements=fpn"


def test_tune_output_is_off_while_fitting_and_as_it_was_after(monkeypatch):
    from yolor_ray.paired.progress import QUIET_TUNE_ENV, run_config_output, tune_output

    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    monkeypatch.delenv("TUNE_PRINT_ALL_TRIAL_ERRORS", raising=False)
    with tune_output(verbose=False):
        assert {key: os.environ[key] for key in QUIET_TUNE_ENV} == QUIET_TUNE_ENV
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and "TUNE_PRINT_ALL_TRIAL_ERRORS" not in os.environ
    with tune_output(verbose=True):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"
    plan = LinesPlan(noun="run", total=1, epochs=1, location="/r")
    assert run_config_output(plan, verbose=True) == dict(verbose=1, callbacks=[])
    quiet = run_config_output(plan, verbose=False)
    assert quiet["verbose"] == 0 and type(quiet["callbacks"][0]).__name__ == "TrialLines"


@pytest.mark.parametrize("text", ["", "no counts here"])
def test_status_counts_of_other_lines(text):
    assert status_counts(text) is None
