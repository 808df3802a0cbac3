"""Sweeps end to end: a real local Ray, Tune with ASHA, each trial a real Ray Train run."""
import json
import os
import re
import time
from pathlib import Path

import pytest

from yolor_ray.paired.plan import run_name

from support.lines import check_run_lines
from support.paths import ATSS
from support.runs import checkpointed, kill_once_checkpointed, tune_trial_statuses, yolor_ray
from support.s3 import s3_keys

pytestmark = pytest.mark.subprocess

SWEEP_EPOCHS = 3


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory) -> Path:
    """Enough images that one epoch of a good variant already finds some boxes."""
    from yolor_ray.data.shapes import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("sweep") / "shapes", ShapesSpec(num_train=64, num_val=16, seed=3,
                                                                               image_size=128))


def _sweep_args(data, storage, name, *extra):
    return ["tune", ATSS, "--data", data, "--small", "--image-size", 128, "--epochs", SWEEP_EPOCHS,
            "--storage", storage, "--name", name, *extra]


@pytest.fixture(scope="module")
def finished_sweep(sweep_data, tmp_path_factory):
    """A 4-trial grid, 1 worker per trial: two placements x a working LR and one too small
    to learn anything, so ASHA has weak trials to stop."""
    storage = tmp_path_factory.mktemp("sweeps")
    start = time.monotonic()
    # Every trial also logs to MLflow (a local SQLite store): one MLflow run per trial.
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{storage}/mlflow.db", MLFLOW_EXPERIMENT_NAME="grid4")
    proc = yolor_ray(*_sweep_args(sweep_data, storage, "grid4", "--search", "grid", "--placements", "fpn",
                                  "fpn+pred", "--lr", "0.02", "0.000001", "--num-workers", 1, "--tracker", "mlflow"),
                     env=env, cwd=storage)  # MLflow's default artifact root, ./mlruns, lands there, not in the repo
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"4-trial sweep: {elapsed:.0f} s")
    return storage / "grid4", proc, elapsed


@pytest.mark.ray
def test_sweep_stops_weak_trials_and_leaderboard_agrees_with_trials(finished_sweep):
    sweep, proc, elapsed = finished_sweep
    board = json.loads((sweep / "leaderboard.json").read_text())
    trials = board["trials"]
    assert len(trials) == 4 and board["metric"] == "coco/bbox_mAP"
    statuses = [t["status"] for t in trials]
    assert "stopped" in statuses and "error" not in statuses, statuses
    stopped = [t for t in trials if t["status"] == "stopped"]
    assert all(t["epochs_run"] < SWEEP_EPOCHS for t in stopped)
    completed = [t for t in trials if t["status"] == "completed"]
    assert completed and all(t["epochs_run"] == SWEEP_EPOCHS for t in completed)
    # Sorted by the metric's last value, best first.
    values = [t["metrics"]["coco/bbox_mAP"] for t in trials]
    assert values == sorted(values, reverse=True)
    assert {t["variant"]["lr"] for t in trials} == {0.02, 0.000001}
    assert len({(t["variant"]["placements"], t["variant"]["lr"]) for t in trials}) == 4  # each variant once
    for trial in trials:
        record = json.loads((sweep / "runs" / trial["trial"] / "results.json").read_text())
        assert record["status"] == trial["status"]
        assert record["metrics"] == trial["metrics"]
        assert [h["epoch"] for h in record["history"]] == list(range(1, trial["epochs_run"] + 1))
        assert record["implicit"]["placements"] == trial["variant"]["placements"].split("+")
        assert record["world_size"] == 1
    markdown = (sweep / "leaderboard.md").read_text()
    for trial in trials:
        assert f"| {trial['rank']} | {trial['trial']} |" in markdown
    assert (sweep / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "leaderboard.json" in proc.stdout
    print(markdown)

    # The terminal: each trial's lines (start, epochs with their AP, end), status lines, not Tune's tables.
    seen = check_run_lines(proc.stdout, proc.stderr, "trial", {t["trial"]: SWEEP_EPOCHS for t in trials},
                           sweep.resolve())
    for trial in trials:
        end = f"trial {trial['trial']} " + (f"done: {SWEEP_EPOCHS}/{SWEEP_EPOCHS} epochs, bbox_mAP "
                                            f"{trial['metrics']['coco/bbox_mAP']:.3f}, "
                                            if trial["status"] == "completed" else
                                            f"stopped early at epoch {trial['epochs_run']}/{SWEEP_EPOCHS}, ")
        assert any(line.startswith(end) for line in seen["per_run"][trial["trial"]]), (end, seen["per_run"])
    assert seen["statuses"][-1] == dict(done=len(completed), stopped=len(stopped), running=0, pending=0, failed=0)
    terminal = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert len(terminal) <= 3 * len(trials) * SWEEP_EPOCHS + 40, len(terminal)  # trials x epochs x 3, plus the board


@pytest.mark.ray
def test_trials_reuse_their_actors_and_a_stopped_trial_stops(finished_sweep):
    """4 trials, 2 at a time: the 3rd and 4th train in the actors of the first two (Tune's
    reuse_actors), which it can only do once the trial before has stopped training."""
    sweep, _, _ = finished_sweep
    board = json.loads((sweep / "leaderboard.json").read_text())
    reports = {}
    for trial in board["trials"]:
        lines = (sweep / "runs" / trial["trial"] / "result.json").read_text().splitlines()
        reports[trial["trial"]] = [json.loads(line) for line in lines if line.strip()]
    pids = {lines[0]["pid"] for lines in reports.values()}
    assert len(pids) == 2, {t: lines[0]["pid"] for t, lines in reports.items()}
    starts = sorted(reports, key=lambda t: reports[t][0]["timestamp"] - reports[t][0]["time_total_s"])
    for trial in board["trials"]:
        # Every epoch it trained reached Tune, and none after it was stopped; no attempt failed.
        assert [r["epoch"] for r in reports[trial["trial"]]] == list(range(1, trial["epochs_run"] + 1))
        assert trial["restarts"] == 0 and not (sweep / "runs" / trial["trial"] / "error.txt").exists()
    for later in starts[2:]:  # started in an actor whose previous trial had ended: no overlap
        pid = reports[later][0]["pid"]
        earlier = [t for t in starts[:starts.index(later)] if reports[t][0]["pid"] == pid]
        assert earlier and reports[earlier[-1]][-1]["timestamp"] <= reports[later][0]["timestamp"]


@pytest.mark.ray
def test_every_trial_is_an_mlflow_run_with_its_variant(finished_sweep):
    import mlflow

    sweep, _, _ = finished_sweep
    board = json.loads((sweep / "leaderboard.json").read_text())
    tracking = mlflow.MlflowClient(tracking_uri=f"sqlite:///{sweep.parent}/mlflow.db")
    runs = {run.info.run_name: run for run in
            tracking.search_runs([tracking.get_experiment_by_name("grid4").experiment_id])}
    assert sorted(runs) == sorted(t["trial"] for t in board["trials"])
    for trial in board["trials"]:
        run = runs[trial["trial"]]
        assert run.data.params["implicit.placements"] == trial["variant"]["placements"]
        assert float(run.data.params["lr"]) == trial["variant"]["lr"]
        steps = [m.step for m in tracking.get_metric_history(run.info.run_id, "coco/bbox_mAP")]
        # a stopped trial's process ends with it: its epochs so far are logged
        assert steps[:trial["epochs_run"]] == list(range(1, trial["epochs_run"] + 1)), (trial, steps)
        if trial["status"] == "completed":
            assert run.info.status == "FINISHED" and len(steps) == SWEEP_EPOCHS
        else:  # stopped by ASHA: never FINISHED; KILLED, or RUNNING when Tune ended its actor with it
            assert run.info.status in ("KILLED", "RUNNING"), (trial, run.info.status)


@pytest.mark.ray
def test_table_pairs_rows_from_the_stored_results(finished_sweep, sweep_data, tmp_path):
    sweep, _, _ = finished_sweep
    board = json.loads((sweep / "leaderboard.json").read_text())
    proc = yolor_ray("table", sweep.parent)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ATSS")]
    completed = [t for t in board["trials"] if t["status"] == "completed"]
    assert len(rows) == len(completed)
    for trial in completed:
        m = trial["metrics"]
        expected = (f"| ATSS | ✓ | {100 * m['coco/bbox_mAP']:.1f} | {100 * m['coco/bbox_mAP_50']:.1f} | "
                    f"{100 * m['coco/bbox_mAP_75']:.1f} | shapes, small, {SWEEP_EPOCHS} ep | "
                    f"grid4/runs/{trial['trial']} |")
        assert expected in rows, (expected, rows)
    stopped = sum(t["status"] == "stopped" for t in board["trials"])
    assert f"{stopped} trial(s) stopped early" in proc.stdout


@pytest.mark.ray
def test_best_config_trains(finished_sweep, sweep_data, tmp_path):
    sweep, _, _ = finished_sweep
    board = json.loads((sweep / "leaderboard.json").read_text())
    best = board["trials"][0]
    text = (sweep / "best_config.py").read_text()
    assert f"trial {best['trial']}" in text and "type='YOLOR'" in text
    proc = yolor_ray("train", sweep / "best_config.py", "--data", sweep_data, "--small", "--image-size", 128,
                     "--epochs", 1, "--storage", tmp_path / "results", "--name", "best", "--samples", 0)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "results" / "best" / "results.json").read_text())
    assert record["implicit"]["placements"] == best["variant"]["placements"].split("+")
    assert record["model"] == "ATSS"


@pytest.mark.ray
def test_sweep_resumes_after_its_driver_is_killed(sweep_data, tmp_path):
    storage, name = tmp_path / "sweeps", "resumed"
    args = _sweep_args(sweep_data, storage, name, "--search", "random", "--trials", 2, "--placements", "fpn",
                       "fpn+pred", "--num-workers", 1, "--epochs", 2, "--image-size", 64)  # the last one wins
    kill_once_checkpointed(args, storage / name / "runs", grace_s=3)  # grace: Tune saves its experiment state
    assert not (storage / name / "leaderboard.json").exists()
    # 1-worker trials train in their Tune actors: their checkpoints are Tune's, in runs/TRIAL.
    interrupted = checkpointed(storage / name / "runs")
    assert interrupted
    # ASHA may have stopped a trial before the kill (grace period 1): Tune's snapshot says so.
    at_kill = tune_trial_statuses(storage / name / "runs")
    time.sleep(2)
    again = yolor_ray(*args)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "resuming sweep" in again.stderr
    board = json.loads((storage / name / "leaderboard.json").read_text())
    trials = {t["trial"]: t for t in board["trials"]}
    assert len(trials) == 2 and set(interrupted) <= set(trials)
    # 2 random trials over 2 variants: the grid, each variant once
    assert "--trials 2 covers the whole space of 2 variant(s): running the grid" in again.stderr
    assert sorted(t["variant"]["placements"] for t in trials.values()) == ["fpn", "fpn+pred"]
    resumed = {t for t in interrupted if at_kill.get(t) != "TERMINATED"}
    assert resumed, at_kill  # the kill came as soon as a checkpoint was whole: that trial was training
    for trial_id in interrupted:
        record = json.loads((storage / name / "runs" / trial_id / "results.json").read_text())
        epochs = [h["epoch"] for h in record["history"]]
        if trial_id in resumed:  # continued from its checkpoint, not from zero: one restart, every epoch once
            assert record["restarts"] == 1 and epochs == [1, 2], (trial_id, at_kill, record["history"])
        else:  # ended before the kill (ASHA stopped it): not trained again
            assert record["restarts"] == 0 and epochs == list(range(1, trials[trial_id]["epochs_run"] + 1))


@pytest.mark.ray
def test_a_trial_keeps_its_best_checkpoints_by_the_sweeps_metric_and_mode(shapes_dir, tmp_path):
    """--keep-checkpoints 1 over 3 epochs: the epoch that --metric and --mode rank best, plus the
    latest. Max of the training loss keeps an early epoch, where bbox mAP (equal at every epoch
    on this little data) would keep the latest alone."""
    storage = tmp_path / "sweeps"
    proc = yolor_ray("tune", ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--epochs", 3,
                     "--storage", storage, "--name", "by-loss", "--search", "grid", "--placements", "fpn",
                     "--no-early-stopping", "--keep-checkpoints", 1, "--metric", "train/loss", "--mode", "max",
                     "--samples", 0)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (trial,) = json.loads((storage / "by-loss" / "leaderboard.json").read_text())["trials"]
    run = storage / "by-loss" / "runs" / trial["trial"]
    losses = [h["train/loss"] for h in json.loads((run / "results.json").read_text())["history"]]
    kept = sorted(len(json.loads((c / "run_state.json").read_text())["history"]) for c in run.glob("checkpoint_*"))
    assert kept == sorted({losses.index(max(losses)) + 1, 3}), (losses, kept)  # the epochs the checkpoints end

@pytest.mark.parametrize("extra, message", [
    (["--placements", "fpn+roi"], "'roi' is not a placement of this detector; valid here: fpn, pred, head_in"),
    (["--metric", "coco/segm_mAP"], "metric 'coco/segm_mAP' is never reported by atss_r50_fpn_1x_coco.py"),
    pytest.param(["--num-workers", 2], "the local Ray cluster can never hold a trial: one trial needs 3 CPU",
                 marks=pytest.mark.ray),  # Ray starts to tell
    (["--search", "grid", "--lr", "0.01", "0.02", "--space", "{space}"], "grid search needs lists of choices"),
    (["--space", "{empty}"], "the search space is empty"),
])
def test_bad_sweeps_are_refused_before_anything_is_written(shapes_dir, tmp_path, extra, message):
    (tmp_path / "space.yaml").write_text("init: {add_std: {uniform: [0.01, 0.05]}}\n")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    extra = [str(e).format(space=tmp_path / "space.yaml", empty=tmp_path / "empty.yaml") for e in extra]
    storage = tmp_path / "sweeps"
    proc = yolor_ray(*_sweep_args(shapes_dir, storage, "bad", *extra))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(re.escape(message), proc.stderr), proc.stderr
    assert not storage.exists() or not any(storage.iterdir())


@pytest.mark.ray
def test_sweep_to_s3_with_optuna_and_its_table(bucket, s3_endpoint, sweep_data, tmp_path):
    name, client = bucket
    proc = yolor_ray("tune", ATSS, "--data", sweep_data, "--small", "--image-size", 128, "--epochs", 1,
                     "--storage", f"s3://{name}/sweeps", "--s3-endpoint", s3_endpoint, "--name", "on-s3",
                     "--search", "optuna", "--trials", 1, "--placements", "fpn+pred", "--modeling", "vector", "mf",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "optuna search" in proc.stderr
    keys = s3_keys(client, name)
    for file in ("sweep.json", "leaderboard.json", "leaderboard.md", "trials.png", "best_config.py"):
        assert f"sweeps/on-s3/{file}" in keys, keys
    board = json.loads(client.get_object(Bucket=name, Key="sweeps/on-s3/leaderboard.json")["Body"].read())
    (trial,) = board["trials"]
    assert trial["status"] == "completed" and trial["run"] == f"s3://{name}/sweeps/on-s3/runs/{trial['trial']}"
    assert f"sweeps/on-s3/runs/{trial['trial']}/results.json" in keys
    assert not (tmp_path / "results").exists()  # nothing landed locally
    table = yolor_ray("table", f"s3://{name}/sweeps", "--s3-endpoint", s3_endpoint)
    assert table.returncode == 0, table.stderr
    m = trial["metrics"]
    assert f"| ATSS | ✓ | {100 * m['coco/bbox_mAP']:.1f} | {100 * m['coco/bbox_mAP_50']:.1f} |" in table.stdout


@pytest.fixture(scope="module")
def warm_sweep(trained_baseline, tmp_path_factory) -> tuple[Path, tuple]:
    """4 YOLOR variants fine-tuned for 1 epoch from one trained baseline, none stopped early: the
    warm start's test reads it, the confirmation's confirms its top 2. Its storage and arguments."""
    storage = tmp_path_factory.mktemp("warm") / "sweeps"
    sweep = ("tune", ATSS, "--data", trained_baseline["data"], "--small", "--image-size", 128, "--epochs", 1,
             "--batch-size", 4, "--storage", storage, "--name", "warm", "--from", trained_baseline["run"],
             "--search", "grid", "--placements", "fpn", "pred", "fpn+pred", "head_in", "--modeling", "vector",
             "--no-early-stopping", "--num-workers", 1)
    proc = yolor_ray(*sweep)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return storage, sweep


@pytest.mark.ray
def test_warm_started_sweep_starts_every_trial_at_the_baseline(warm_sweep, trained_baseline):
    """Each variant validates before its first epoch at the baseline's AP (its implicit
    parameters at their init)."""
    baseline = json.loads((trained_baseline["run"] / "results.json").read_text())
    base_ap = baseline["metrics"]["coco/bbox_mAP"]
    assert base_ap > 0.05, base_ap
    storage, _ = warm_sweep
    board = json.loads((storage / "warm" / "leaderboard.json").read_text())
    assert board["warm_start"] == str(trained_baseline["run"])
    statuses = [t["status"] for t in board["trials"]]
    assert statuses == ["completed"] * 4, statuses
    starts = {}
    for trial in board["trials"]:
        record = json.loads((storage / "warm" / "runs" / trial["trial"] / "results.json").read_text())
        assert record["warm_start"] == str(trained_baseline["run"]) and record["implicit"] is not None
        starts[trial["label"]] = record["before_training"]["coco/bbox_mAP"]
        assert trial["before_training"] == record["before_training"]
    print(f"baseline AP {base_ap:.4f}; before fine-tuning: {starts}")
    assert all(abs(ap - base_ap) <= 0.01 for ap in starts.values()), (base_ap, starts)
    assert "start |" in (storage / "warm" / "leaderboard.md").read_text()


@pytest.mark.ray
def test_a_complete_sweep_confirmed_with_two_seeds(warm_sweep, trained_baseline):
    """The warm-started sweep, complete, then --confirm 2 --seeds 2: its top 2 and the baseline
    (warm-started too, no implicit knowledge) at seeds 0 and 1, each a run of its own, the sweep's
    trials not trained again. One epoch each: a killed pass resumed is the paired layer's, which
    reproduce's tests kill (test_reproduce: a reproduction and its extension to a resolution), as
    a dead variant's "beyond noise" is theirs too."""
    storage, sweep = warm_sweep
    trials = {t["trial"] for t in json.loads((storage / "warm" / "leaderboard.json").read_text())["trials"]}
    again = yolor_ray(*sweep)  # complete: only a confirmation can be added
    assert again.returncode == 2 and "or confirm its winners: the same command with --confirm K" in again.stderr
    proc = yolor_ray(*sweep, "--confirm", 2, "--seeds", 2)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "is complete: confirming its top 2 variant(s)" in proc.stderr
    assert "6 run(s) to train, 0 reused" in proc.stderr
    top = [t["label"] for t in json.loads((storage / "warm" / "leaderboard.json").read_text())["trials"][:2]]
    confirm_runs = [run_name(arm, seed) for arm in ("baseline", *top) for seed in (0, 1)]
    check_run_lines(proc.stdout, proc.stderr, "run", dict.fromkeys(confirm_runs, 1), (storage / "warm").resolve())
    leaderboard = json.loads((storage / "warm" / "leaderboard.json").read_text())
    assert {t["trial"] for t in leaderboard["trials"]} == trials and leaderboard["confirmation"]["seeds"] == [0, 1]
    runs = storage / "warm" / "runs"
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == sorted(trials)
    confirmation = json.loads((storage / "warm" / "confirmation.json").read_text())
    assert confirmation["seeds"] == [0, 1] and "paired t" in confirmation["method"]
    assert (storage / "warm" / "confirmation.png").read_bytes().startswith(b"\x89PNG")  # its forest plot
    assert "S-1 degrees of freedom" in confirmation["method"]
    assert {run["status"] for run in confirmation["runs"]} == {"completed"} and len(confirmation["runs"]) == 6
    baseline_runs = [run["run"] for run in confirmation["runs"] if run["arm"] == "baseline"]
    assert [Path(run).name for run in baseline_runs] == ["baseline-seed0", "baseline-seed1"]
    for run in baseline_runs:
        record = json.loads((Path(run) / "results.json").read_text())
        assert record["implicit"] is None and record["warm_start"] == str(trained_baseline["run"])
    assert [v["label"] for v in confirmation["variants"]] == top  # the best 2, in order
    variants = [v["paired"] for v in confirmation["variants"]]
    for v in variants:
        assert v["low"] <= v["diff_mean"] <= v["high"] and len(v["variant"]["values"]) == 2
        assert v["baseline"]["values"] == confirmation["baseline"]["values"]
    board = (storage / "warm" / "leaderboard.md").read_text()
    verdicts = ["within noise" if v["within_noise"] else "**beyond noise**" for v in variants]
    assert all(verdict in board for verdict in verdicts) and "paired t" in board
    table = yolor_ray("table", storage)
    assert table.returncode == 0, table.stderr
    assert "warm: confirmation: 2 seeds" in table.stdout and verdicts[0] in table.stdout
    print(board)
