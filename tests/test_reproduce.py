"""``yolor-ray reproduce``: the reference table's rows x baseline/YOLOR x seeds as real runs on a real
local Ray, their table with paired intervals; resume, a failed run, the dry run and its cost."""
import json
import re
import time
from pathlib import Path

import pytest

from yolor_ray.noise import paired_difference
from yolor_ray.paired.plan import DONE, PlannedRun
from yolor_ray.paired.summary import outcome_of
from yolor_ray.records import RunOutcome, RunResults
from yolor_ray.reproduce.estimate import ArmCost, Estimate
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.reproduce.summary import summarize
from yolor_ray.table import format_reproduction
from yolor_ray.train.spec import OptionError, RunSettings, Scaling, TrainSpec
from yolor_ray.units import device_time_text, duration_text

from support.lines import check_run_lines
from support.runs import env_with_test_modules, kill_once_checkpointed, whole_checkpoints, yolor_ray

SMALL = ("--small", "--image-size", 128, "--batch-size", 4, "--samples", 0)


def _outcome(row: str, arm: str, seed: int, where: str, results: RunResults | None,
             error: str | None = None) -> RunOutcome:
    run = PlannedRun(f"{row}-{arm}", seed, TrainSpec(config=Path(f"{row}.py"), name=f"{row}-{arm}-seed{seed}"), DONE)
    return outcome_of(run, where, results, error, cpus_per_worker=1)


def _results(ap: float, epoch_times=(30.0, 30.0), segm: float | None = None, world_size: int = 2) -> RunResults:
    metrics = {"coco/bbox_mAP": ap, "coco/bbox_mAP_50": ap + 0.2, "coco/bbox_mAP_75": ap - 0.01}
    if segm is not None:
        metrics["coco/segm_mAP"] = segm
    history = [{"epoch": i + 1, "epoch_time_s": t} for i, t in enumerate(epoch_times)]
    return RunResults(name="r", location="l", config="c.py", model="ATSS", metrics=metrics, history=history,
                      world_size=world_size, use_gpu=True, wall_time_s=5.0)


def test_the_table_pairs_seeds_and_marks_what_failed():
    """Per row and metric: means over the seeds, the paired interval of noise.py on the seeds
    with both arms, the reference table's own figures; a failed run in its row; GPU-hours from the epochs' times."""
    spec = ReproduceSpec(train=RunSettings(scaling=Scaling(use_gpu=True, num_workers=2)),
                         rows=("atss", "mask-rcnn"), seeds=3)
    atss = {"baseline": [0.394, 0.391, 0.396], "yolor": [0.397, 0.393, 0.399]}
    outcomes = [_outcome("atss", arm, seed, f"runs/atss-{arm}-seed{seed}", _results(atss[arm][seed]))
                for arm in ("baseline", "yolor") for seed in range(3)]
    outcomes += [_outcome("mask-rcnn", "baseline", s, "m", _results(0.38, segm=0.34)) for s in range(3)]
    outcomes += [_outcome("mask-rcnn", "yolor", 0, "m", _results(0.38, segm=0.35)),
                 _outcome("mask-rcnn", "yolor", 1, "m", None, "RuntimeError: CUDA out of memory"),
                 _outcome("mask-rcnn", "yolor", 2, "m", _results(0.39, segm=0.35))]
    rep = summarize(spec, "seedtable", "s3://b/seedtable", {"num_workers": 2, "epochs": None}, outcomes)
    atss_row, mask_row = rep.rows
    box = atss_row.metrics[0]
    assert box.label == "box AP" and box.reference_baseline == 39.4 and box.reference_delta == 0.2
    expected = paired_difference([100 * v for v in atss["yolor"]], [100 * v for v in atss["baseline"]])
    assert box.paired.low == pytest.approx(expected.low) and box.paired.high == pytest.approx(expected.high)
    assert box.paired.within_noise == expected.within_noise
    assert box.paired.variant.mean == pytest.approx(39.633, abs=1e-3)
    assert [m.label for m in mask_row.metrics] == ["box AP", "box AP50", "box AP75", "mask AP"]
    mask_ap = mask_row.metrics[3]
    assert mask_ap.paired.pairs == 2 and mask_ap.paired.variant.values == [35.0, None, 35.0]
    assert [(o.arm, o.seed, o.status, o.error) for o in mask_row.failed] == [
        ("mask-rcnn-yolor", 1, "failed", "RuntimeError: CUDA out of memory")]
    # 2 GPUs x 60 s of epochs = 1/30 GPU-hour a run; 3 + 3 runs of ATSS
    assert atss_row.device_hours.baseline == pytest.approx(0.1) and rep.device == "GPU"
    assert {r.status for r in rep.runs} == {"completed", "failed"}
    md = format_reproduction(rep)
    assert "| ATSS | box AP | 39.37 ± 0.25 | 39.63 ± 0.31 |" in md
    assert "- Mask R-CNN, YOLOR, seed 1: RuntimeError: CUDA out of memory" in md and "--name seedtable" in md
    assert "| Mask R-CNN | 5 of 6 |" in md
    assert "| mask-rcnn-yolor seed 1 | failed | - | - | - | m |" in md
    assert "| atss-baseline seed 0 | completed | 39.40 | 0.0333 GPU-hours | 0 | runs/atss-baseline-seed0 |" in md
    again = type(rep).from_json(rep.to_json())  # its nested parts read back as they were written
    assert again == rep and again.rows[1].metrics[3].paired.variant.values == [35.0, None, 35.0]


def test_an_epoch_trains_on_the_images_mmdet_keeps(tmp_path):
    """Without --data: the config's annotation file, images without a (non-crowd) box left out
    when the config filters empty images, as mmdet's CocoDataset does."""
    from mmengine.config import Config

    from yolor_ray.reproduce.estimate import train_images

    anns = [dict(id=1, image_id=1, iscrowd=0), dict(id=2, image_id=1, iscrowd=0), dict(id=3, image_id=2, iscrowd=1)]
    (tmp_path / "train.json").write_text(json.dumps(dict(images=[dict(id=i) for i in (1, 2, 3)], annotations=anns)))
    for filtered, images in ((True, 1), (False, 3)):
        dataset = dict(data_root=str(tmp_path), ann_file="train.json", filter_cfg=dict(filter_empty_gt=filtered))
        assert train_images(Config(dict(train_dataloader=dict(dataset=dataset))), None) == images


def test_a_run_written_before_epochs_were_timed_counts_its_wall_time():
    timed, untimed = _results(0.3), _results(0.3)
    untimed.history = [{"epoch": 1}, {"epoch": 2}]
    assert timed.train_time_s == 60.0 and untimed.train_time_s == 5.0


def test_wall_time_schedules_the_longest_runs_first():
    arms = (ArmCost("atss", "baseline", 3600, 1.0, "given", 3), ArmCost("atss", "yolor", 1800, 1.0, "given", 2))
    est = Estimate(arms, devices_per_run=2, device="GPU", concurrency=2, concurrency_source="x", assumptions=())
    assert est.device_hours == pytest.approx(2 * (3 + 1))
    assert est.wall_hours == pytest.approx(2.0)  # 1 | 1, then 1 + 0.5 | 0.5 + 0.5 ... the last ends at 2


CPU_UNITS = {"CPU-seconds": 1, "CPU-minutes": 60, "CPU-hours": 3600}


def test_durations_and_device_time_read_in_the_unit_that_fits():
    assert [duration_text(s) for s in (4.25, 42, 95, 3000, 5400, 100_000, 1_000_000)] == [
        "4.25 s", "42 s", "1.58 min", "50 min", "1.5 h", "27.8 h", "11.6 days"]
    assert [device_time_text(s / 3600, "CPU") for s in (42, 336, 5400, 1_000_000)] == [
        "42 CPU-seconds", "5.6 CPU-minutes", "1.5 CPU-hours", "278 CPU-hours"]
    # GPU time stays in GPU-hours, the cluster budget's unit, with no exponent
    assert [device_time_text(h, "GPU") for h in (0.0117, 27.8, 1500)] == ["0.0117 GPU-hours", "27.8 GPU-hours",
                                                                           "1,500 GPU-hours"]
    assert device_time_text(None, "GPU") == "-"


@pytest.mark.parametrize("train_cfg, validations", [
    (dict(max_epochs=12), 12),
    (dict(max_epochs=12, val_interval=5), 3),  # epochs 5, 10 and the last
    (dict(max_epochs=12, val_interval=4, val_begin=6), 2),  # epochs 8 and 12
    (dict(max_epochs=3, val_interval=1, no_val=True), 0),
])
def test_validation_is_counted_as_the_train_loop_runs_it(train_cfg, validations):
    from mmengine.config import Config

    from yolor_ray.reproduce.estimate import val_iterations_per_run, validations_per_run

    no_val = train_cfg.pop("no_val", False)
    cfg = Config(dict(train_cfg=dict(type="EpochBasedTrainLoop", **train_cfg), val_cfg=None if no_val else {},
                      val_dataloader=dict(batch_size=2)))
    assert validations_per_run(cfg) == validations
    assert val_iterations_per_run(cfg, images=5000, num_workers=8) == validations * 313  # ceil(5000 / 16)
    # a run's hours: its training iterations, plus its validation ones where they were measured
    given = ArmCost("atss", "baseline", 3600, 1.0, "given", 1, val_iterations=1800)
    measured = ArmCost("atss", "baseline", 3600, 1.0, "measured", 1, val_iterations=1800, val_seconds_per_iter=0.5)
    assert (given.hours_per_run, measured.hours_per_run) == (1.0, 1.25)


@pytest.mark.parametrize("change, message", [
    (dict(seeds=1), "--seeds must be an int >= 2 (a paired interval needs two seeds), got 1"),
    (dict(rows=("atss", "atss")), "--rows names a row twice"),
    (dict(seconds_per_iter={"retinanet": 0.2}), "unknown reference row 'retinanet'"),
    (dict(calibrate=2, seconds_per_iter={"atss": 0.2}), "pass one"),
])
def test_bad_reproduce_settings_are_named(change, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        ReproduceSpec(train=RunSettings(), **change)


@pytest.mark.subprocess
@pytest.mark.parametrize("extra, message", [
    (["--calibrate", 2], "--calibrate and --seconds-per-iter estimate the cost of a plan: add --dry-run"),
    (["--seeds", 1], "--seeds must be an int >= 2"),
    (["--yolor-options", "model.implicit.init.multiply.mea=0"], "did you mean 'mean'"),
    (["--gpu"], "the local Ray cluster can never hold a run: one run needs 1 CPU, 1 GPU"),  # its plan unwritten
])
def test_bad_reproductions_are_refused_before_anything_is_written(shapes_dir, tmp_path, extra, message):
    storage = tmp_path / "results"
    proc = yolor_ray("reproduce", "--rows", "atss", "--data", shapes_dir, *SMALL, "--storage", storage, *extra)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not storage.exists() or not any(storage.iterdir())


@pytest.mark.subprocess
def test_dry_run_prints_the_plan_and_its_cost_and_writes_nothing(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    proc = yolor_ray("reproduce", "--rows", "atss", "faster-rcnn", "--seeds", 2, "--data", shapes_dir, *SMALL,
                     "--epochs", 2, "--storage", storage, "--name", "plan", "--max-concurrent", 2, "--dry-run",
                     "--seconds-per-iter", "atss=0.5", "faster-rcnn=0.25")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "runs:     8 = 2 row(s) x baseline/YOLOR x 2 seeds; 8 to train, 0 reused" in out
    # 16 images / batch 4 = 4 iterations an epoch, 2 epochs; 4 runs x 8 x 0.5 s + 4 x 8 x 0.25 s on 1 CPU each
    assert "atss            baseline               8      0.5" in out
    # wall: 2 at a time, 4 + 4 s, 4 + 4 s, then 2 + 2 s twice: 12 s
    assert "estimate: 24 CPU-seconds; wall 12 s at 2 run(s) at a time (--max-concurrent)" in out
    assert "assumptions:" in out and "validation (given figures are training's: --calibrate measures both)" in out
    assert not storage.exists()
    unpriced = yolor_ray("reproduce", "--rows", "atss", "--data", shapes_dir, *SMALL, "--storage", storage,
                         "--dry-run")
    assert unpriced.returncode == 0 and "no estimate: pass --calibrate N" in unpriced.stdout, unpriced.stderr
    assert not storage.exists()


@pytest.mark.ray
@pytest.mark.subprocess
def test_calibrate_times_each_rows_configs_on_one_worker(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    proc = yolor_ray("reproduce", "--rows", "atss", "--seeds", 2, "--data", shapes_dir, *SMALL, "--epochs", 3,
                     "--storage", storage, "--dry-run", "--calibrate", 2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith(("  atss  ",))]
    lines = [line for line in lines if line[1] in ("baseline", "yolor")]  # the cost table's
    assert [line[1] for line in lines] == ["baseline", "yolor"], proc.stdout
    for line in lines:  # row arm iterations s/iter val-iterations val-s/iter "time unit" runs source...
        assert line[2] == "12" and float(line[3]) > 0
        assert " ".join(line[9:]) == "measured, median of 2 iteration(s) each"
        assert line[4] == "24" and float(line[5]) > 0  # 3 validations of 8 images, 1 a batch
        seconds = 12 * float(line[3]) + 24 * float(line[5])  # 1 CPU a run
        assert line[7] == device_time_text(seconds / 3600, "CPU").split()[1]  # in the unit that fits
        assert float(line[6]) * CPU_UNITS[line[7]] == pytest.approx(seconds, rel=0.02)  # each figure to 3 digits
    assert "estimate: " in proc.stdout and "as many as the cluster holds now" in proc.stdout
    assert "validation counted at its measured seconds per iteration" in proc.stdout
    assert not storage.exists()


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def _settled(folder: Path, quiet_s: float = 3.0, timeout_s: float = 120.0) -> list[tuple[str, int]]:
    """The files under ``folder`` once nothing has changed there for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    listing = _listing(folder)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = _listing(folder)
        if now == listing:
            return now
        listing = now
    raise AssertionError(f"files under {folder} still changing {timeout_s} s after the kill")


def _reproduction(storage: Path, name: str) -> dict:
    return json.loads((storage / name / "reproduce.json").read_text())


@pytest.mark.ray
@pytest.mark.subprocess
def test_two_rows_resume_after_a_kill_mark_a_failed_run_and_table(shapes_dir, tmp_path):
    """ATSS and Faster R-CNN x baseline/YOLOR x 2 seeds. Killed once a run has a checkpoint;
    run again with one run made to fail (a user's hook); run again: only that one trains."""
    storage, name = tmp_path / "results", "seedtable"
    runs = storage / name / "runs"
    args = ["reproduce", "--rows", "atss", "faster-rcnn", "--seeds", 2, "--data", shapes_dir, *SMALL,
            "--image-size", 64, "--epochs", 2, "--storage", storage, "--name", name, "--max-failures", 0,
            "--cfg-options",
            "custom_imports.imports=['yolor_ray.registrations','support.planted_failure_hook']",
            "default_hooks.planted={'type':'PlantedFailureHook'}"]
    env = env_with_test_modules()
    kill_once_checkpointed(args, runs, env=env)
    before = _settled(storage)  # a run's actor outlives the killed driver by a few seconds
    finished = {p.parent.name for p in runs.glob("*/results.json")}
    checkpoint_epochs = whole_checkpoints(runs)
    interrupted = set(checkpoint_epochs) - finished
    assert interrupted and len(finished) < 8, (finished, interrupted)
    # A run killed after its last epoch's checkpoint but before results.json has nothing left to train.
    mid_training = {run for run in interrupted if checkpoint_epochs[run] < 2}

    # Its dry run says where it stands and writes nothing.
    plan = yolor_ray(*args, "--dry-run", env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert f"{len(finished)} run(s) done" in plan.stdout and f"{8 - len(finished)} to train" in plan.stdout
    assert _listing(storage) == before

    failing = "faster-rcnn-yolor-seed1"
    second = yolor_ray(*args, env=env_with_test_modules(YOLOR_TEST_FAIL_RUN=failing))
    assert second.returncode == 1, second.stdout[-4000:] + second.stderr[-4000:]
    assert (f"8 run(s), {8 - len(finished)} to train ({len(interrupted)} continue from a checkpoint), "
            f"{len(finished)} reused") in second.stderr
    assert "1 of 8 run(s) have no results (first: faster-rcnn-yolor seed 1: RuntimeError: planted failure" \
        in second.stderr and f"--name {name}" in second.stderr
    for run in interrupted:  # continued from its checkpoint: every epoch once, one restart if any was left
        record = json.loads((runs / run / "results.json").read_text())
        assert [h["epoch"] for h in record["history"]] == [1, 2], record["history"]
        assert record["restarts"] == (1 if run in mid_training else 0), (run, record["restarts"])
    rep = _reproduction(storage, name)
    atss, faster = rep["rows"]
    assert atss["completed"] == 4 and not atss["failed"] and atss["metrics"][0]["paired"]["low"] is not None
    assert faster["completed"] == 3 and faster["failed"][0]["seed"] == 1
    assert faster["failed"][0]["arm"] == faster["yolor_arm"] == "faster-rcnn-yolor"
    assert faster["metrics"][0]["paired"]["pairs"] == 1 and faster["metrics"][0]["paired"]["low"] is None
    marked = "- Faster R-CNN, YOLOR, seed 1: RuntimeError: planted failure"
    assert marked in (storage / name / "reproduce.md").read_text()
    # The terminal: each run's lines (start, epochs with their AP, end or failure with its reason), status lines,
    # not Tune's tables nor MMEngine's lines of the driver's model builds (tests/support/lines.py).
    trained = {f"{row}-{arm}-seed{seed}": 2 for row in ("atss", "faster-rcnn") for arm in ("baseline", "yolor")
               for seed in (0, 1) if f"{row}-{arm}-seed{seed}" not in finished}
    seen = check_run_lines(second.stdout, second.stderr, "run", trained, (storage / name).resolve(), failed=(failing,))
    assert seen["per_run"][failing][-1].endswith(f"RuntimeError: planted failure of {failing}"), seen["per_run"]
    terminal = second.stdout.splitlines() + second.stderr.splitlines()
    assert len(terminal) <= 3 * len(trained) * 2 + 60, len(terminal)  # runs x epochs x 3, plus the plan and table

    # The failed run again, as a TorchTrainer run (--trainer-runs: the path of runs with several workers).
    third = yolor_ray(*args, "--trainer-runs", env=env)
    assert third.returncode == 0, third.stdout[-4000:] + third.stderr[-4000:]
    assert "8 run(s), 1 to train (0 continue from a checkpoint), 7 reused" in third.stderr
    check_run_lines(third.stdout, third.stderr, "run", {failing: 2}, (storage / name).resolve())
    assert (storage / name / "tune").is_dir()  # Tune's experiment of TorchTrainer runs, beside runs/
    assert json.loads((runs / failing / "results.json").read_text())["world_size"] == 1
    rep = _reproduction(storage, name)
    assert [r["completed"] for r in rep["rows"]] == [4, 4] and rep["seeds"] == [0, 1]
    for row in rep["rows"]:
        box = row["metrics"][0]
        paired = box["paired"]
        assert box["label"] == "box AP" and paired["pairs"] == 2
        assert paired["low"] <= paired["diff_mean"] <= paired["high"]
        assert len(paired["baseline"]["values"]) == 2 and box["reference_baseline"] is not None
    for run in rep["runs"]:  # CPU-hours: the run's epochs' time x its 1 CPU
        record = json.loads((Path(run["run"]) / "results.json").read_text())
        assert run["device_hours"] == pytest.approx(sum(h["epoch_time_s"] for h in record["history"]) / 3600,
                                                    abs=1e-6) and run["device_hours"] > 0
    # A seed's baseline and YOLOR runs: the same data in the same order (the sampler's seed is the run's).
    def loader(run: str) -> str:
        text = (runs / run / "config.py").read_text()
        return text[text.index("train_dataloader = "):text.index("train_pipeline = ")]
    assert loader("atss-baseline-seed1") == loader("atss-yolor-seed1") != loader("atss-baseline-seed0")
    assert "seed=1," in loader("atss-yolor-seed1")

    table = yolor_ray("table", storage)
    assert table.returncode == 0, table.stderr
    assert f"# Reproduction `{name}`: the reference table's rows, 2 seeds (0, 1)" in table.stdout
    assert "| ATSS | box AP |" in table.stdout and "| Faster R-CNN | box AP50 |" in table.stdout
    assert "| Model | YOLOR | AP |" not in table.stdout  # its runs are in its own table, not again as single runs

    epochs = args.index("--epochs") + 1
    changed = yolor_ray(*args[:epochs], 1, *args[epochs + 1:], env=env)
    assert changed.returncode == 2 and "was started with epochs 2 (now 1)" in changed.stderr, changed.stderr


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_dead_yolor_variant_run_to_a_resolution_is_beyond_noise_and_resumes_its_extension(trained_baseline,
                                                                                            shapes_dir, tmp_path):
    """ATSS from a trained checkpoint for both arms; YOLOR's prediction multipliers planted at 0
    (no predictions): its AP falls, and the interval says so. A pilot of 3 seeds (one epoch moves
    the baseline's AP by up to 1.3 points between seeds here, measured) and a resolution no 4
    seeds reach: the pilot's sd asks for more, --max-seeds 4 runs one more seed of both arms.
    Killed once that seed has a checkpoint; run again by name: the pilot's N again, and only the
    extension's unfinished runs train. The table says what the cap left."""
    storage, name = tmp_path / "results", "dead"
    runs = storage / name / "runs"
    checkpoint = sorted(trained_baseline["run"].glob("checkpoint_*/checkpoint.pth"))[-1]
    args = ["reproduce", "--rows", "atss", "--seeds", 3, "--resolution", 0.01, "--max-seeds", 4, "--data", shapes_dir,
            *SMALL, "--epochs", 1, "--storage", storage, "--name", name, "--load-from", checkpoint,
            "--yolor-options", "model.implicit.init.multiply.mean=0.0", "model.implicit.init.multiply.std=0.0"]
    kill_once_checkpointed(args, runs, which=lambda run: run.endswith("-seed3"))
    _settled(storage)
    pilot = {f"atss-{arm}-seed{seed}" for arm in ("baseline", "yolor") for seed in range(3)}
    assert pilot <= {p.parent.name for p in runs.glob("*/results.json")}  # the pilot ran in full first
    stamps = {run: (runs / run / "results.json").stat().st_mtime_ns for run in pilot}
    finished = {p.parent.name for p in runs.glob("*-seed3/results.json")}

    again = yolor_ray(*args)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "6 run(s), 0 to train (0 continue from a checkpoint), 6 reused" in again.stderr
    assert (f"second stage (seeds on demand): 2 run(s) beyond the pilot's 3 seed(s), {2 - len(finished)} to train, "
            f"{len(finished)} reused") in again.stderr, again.stderr[-3000:]
    assert {run: (runs / run / "results.json").stat().st_mtime_ns for run in pilot} == stamps
    assert not list(runs.glob("*-seed4"))  # capped at 4 seeds
    row = _reproduction(storage, name)["rows"][0]
    reached, box = row["reached"], row["metrics"][0]["paired"]
    assert (reached["status"], reached["pilot"], reached["planned"], reached["run"]) == ("capped", 3, 4, 4)
    assert reached["needed"] > 4 and reached["rest_device_hours"] > 0
    assert box["pairs"] == 4 and box["pilot"] == 3 and box["seeds"] == [0, 1, 2, 3]
    assert box["high"] - box["low"] > 2 * 0.01
    assert min(box["baseline"]["values"]) > 1.0  # % AP: the baseline detects
    assert box["diff_mean"] < 0 and box["high"] < 0 and not box["within_noise"], box
    assert (storage / name / "reproduce.png").read_bytes().startswith(b"\x89PNG")  # its forest plot
    for seed, value in enumerate(box["baseline"]["values"]):  # the unrounded APs, in %
        metrics = json.loads((runs / f"atss-baseline-seed{seed}" / "results.json").read_text())["metrics"]
        assert value == pytest.approx(100 * metrics["coco/bbox_unrounded_mAP"], abs=1e-9)
    md = (storage / name / "reproduce.md").read_text()
    assert "a pilot of 3 seeds (0, 1, 2), run to ±0.01 AP" in md
    assert f"capped: {reached['needed']} seeds needed, 4 run; the rest would cost " in md
    assert "**beyond noise**" in md
