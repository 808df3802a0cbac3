"""Seeds on demand, priced before they run (issue 34 items 3 and 6): the seeds a pilot leads to at an
assumed or a measured sd and their device-hours, the best pilot, ``--prior`` read from a stored
reproduction or confirmation (and refused for anything else), ``tune --confirm``'s dry-run line,
and the forest plot of a reproduction and a confirmation. The records are made by the product's own
summaries from synthetic run outcomes: no training."""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.collections import LineCollection

from yolor_ray.cli import main
from yolor_ray.forest import INTERVALS_GID, confirmation_forest, forest_figure, forest_png, reproduction_forest
from yolor_ray.layout import CONFIRMATION_FILE, REPRODUCTION_FILE, REPRODUCTION_PNG, RESULTS_FILE
from yolor_ray.noise import t975
from yolor_ray.paired.plan import DONE, PlannedRun
from yolor_ray.paired.summary import arm_values, paired_metric
from yolor_ray.prior import PriorError, prior_of, read_prior
from yolor_ray.records import Confirmation, ConfirmedVariant, ReproduceManifest, RunOutcome
from yolor_ray.reproduce.estimate import ArmCost, Estimate
from yolor_ray.reproduce.launch import write_reproduction
from yolor_ray.reproduce.price import format_price, price_resolution
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.reproduce.summary import summarize
from yolor_ray.resolution import BestPilot, Resolution, cap_text, priced_seeds
from yolor_ray.storage import LocalStorage, StorageSpec
from yolor_ray.train.spec import RunSettings, TrainSpec
from yolor_ray.tune.describe import confirmation_lines
from yolor_ray.tune.spec import SweepSpec
from yolor_ray.units import device_time_text

from support.runs import yolor_ray

SEEDS = [0, 1, 2, 3]
# Per seed, in AP fractions: the box APs of each arm, and Mask R-CNN's mask APs (its YOLOR's scatter more).
ATSS = {"baseline": [0.394, 0.391, 0.396, 0.392], "yolor": [0.397, 0.393, 0.399, 0.392]}
MASK_BOX = {"baseline": [0.380, 0.382, 0.381, 0.383], "yolor": [0.381, 0.383, 0.382, 0.384]}
MASK_SEGM = {"baseline": [0.340, 0.341, 0.342, 0.340], "yolor": [0.346, 0.338, 0.349, 0.337]}


def _sd_of(arms: dict[str, list[float]]) -> float:
    """The sd of the paired differences in AP points, as the record should give it."""
    return statistics.stdev(100 * (y - b) for y, b in zip(arms["yolor"], arms["baseline"]))


def _outcomes() -> list[RunOutcome]:
    runs = []
    for arm in ("baseline", "yolor"):
        for i, seed in enumerate(SEEDS):
            runs.append(RunOutcome(f"atss-{arm}", seed, f"runs/atss-{arm}-seed{seed}", "completed",
                                   metrics={"coco/bbox_mAP": ATSS[arm][i], "coco/bbox_mAP_50": ATSS[arm][i] + 0.2},
                                   device_hours=0.5))
            runs.append(RunOutcome(f"mask-rcnn-{arm}", seed, f"runs/mask-rcnn-{arm}-seed{seed}", "completed",
                                   metrics={"coco/bbox_mAP": MASK_BOX[arm][i], "coco/segm_mAP": MASK_SEGM[arm][i]},
                                   device_hours=0.6))
    return runs


def _reproduction(name: str = "earlier"):
    spec = ReproduceSpec(train=RunSettings(), rows=("atss", "mask-rcnn"), seeds=len(SEEDS))
    return summarize(spec, name, f"/somewhere/{name}", {"epochs": 2}, _outcomes())


def _confirmation() -> Confirmation:
    """Two variants against the baseline on coco/bbox_mAP (fractions), 4 seeds."""
    values = {"baseline": [0.30, 0.31, 0.305, 0.302], "fpn vector": [0.302, 0.313, 0.309, 0.30],
              "pred mf": [0.31, 0.309, 0.318, 0.301]}
    runs = [RunOutcome(arm, seed, f"confirm/{arm}-seed{seed}", "completed", metrics={"coco/bbox_mAP": v[i]})
            for arm, v in values.items() for i, seed in enumerate(SEEDS)]
    metric = "coco/bbox_mAP"
    return Confirmation(metric=metric, seeds=SEEDS, method="paired t", baseline=arm_values(runs, "baseline", SEEDS,
                                                                                            metric),
                        variants=[ConfirmedVariant(label, {}, paired_metric(runs, label, "baseline", SEEDS, metric))
                                  for label in ("fpn vector", "pred mf")], runs=runs)


def test_the_worked_examples_priced_with_the_cap_said_plainly():
    """sd 0.15: H 0.1 from a pilot of 3 needs 42 seeds, more than the default cap of 20, which reaches ±0.144;
    the fewest is 12 (pilots 9 to 12, under the cap); H 0.15: pilot 3 -> 19, 5 -> 8, 6 -> 7."""
    capped = priced_seeds(0.15, 0.1, 3, 20)
    assert (capped.needed, capped.run, capped.capped) == (42, 20, True)
    assert capped.fewest == BestPilot(9, 12, 12)
    assert capped.half_width == pytest.approx(t975(2) * 0.15 / math.sqrt(20)) and capped.half_width > 0.1
    assert cap_text(capped) == ("--max-seeds 20 cannot reach ±0.1 from a pilot of 3: it needs 42 seeds; 20 give "
                                "±0.144 (a pilot of 9 to 12 would need 12)")
    assert [priced_seeds(0.15, 0.15, pilot, 20).needed for pilot in (3, 5, 6)] == [19, 8, 7]
    assert cap_text(priced_seeds(0.15, 0.15, 3, 20)) is None and priced_seeds(0.15, 0.15, 3, 20).half_width <= 0.15
    hopeless = priced_seeds(0.15, 0.1, 3, 10)  # no pilot reaches 0.1 within 10 seeds: the fewest is 12
    assert cap_text(hopeless).endswith("no pilot reaches ±0.1 under 10 seeds (the fewest is 12 (pilot 9 to 12))")


def _plan(spec: ReproduceSpec, done: tuple[tuple[str, str, int], ...] = ()):
    """What price_resolution reads of a prepared plan: its spec, the (row, arm) keys, the runs' states."""
    arms = {f"{row}-{arm}": (row, arm) for row in spec.rows for arm in ("baseline", "yolor")}
    runs = tuple(PlannedRun(f"{row}-{arm}", seed, TrainSpec(config=Path("c.py"), name=f"{row}-{arm}-seed{seed}"), DONE)
                 for row, arm, seed in done)
    return SimpleNamespace(spec=spec, arms=arms, configs=dict.fromkeys(arms.values()), runs=runs)


def _estimate(seconds: dict[str, float], iterations: int = 8, runs: int = 3) -> Estimate:
    arms = tuple(ArmCost(row, arm, iterations, s, "given", runs) for row, s in seconds.items()
                 for arm in ("baseline", "yolor"))
    return Estimate(arms, devices_per_run=2, device="GPU", concurrency=4, concurrency_source="--max-concurrent",
                    assumptions=())


def test_each_rows_seeds_and_device_hours_at_the_resolution():
    """42 seeds a row at sd 0.15 and H 0.1 (cap 50): each arm's runs x its hours x 2 GPUs a run; the runs
    already done are not priced again; the fewest seeds' hours beside them."""
    spec = ReproduceSpec(train=RunSettings(), rows=("atss", "faster-rcnn"), seeds=3,
                         resolution=Resolution(target=0.1, max_seeds=50, assume_sd=0.15))
    est = _estimate({"atss": 0.5, "faster-rcnn": 0.25})
    price = price_resolution(_plan(spec, done=(("atss", "baseline", 0),)), est, dict.fromkeys(spec.rows, 0.15),
                             "assumed")
    atss, faster = price.rows
    hour = 8 * 0.5 / 3600 * 2  # an atss run: 8 iterations at 0.5 s, on 2 GPUs
    assert (atss.seeds.needed, atss.seeds.run, faster.seeds.run) == (42, 42, 42)
    assert atss.hours == pytest.approx((41 + 42) * hour)  # seed 0's baseline is done
    assert faster.hours == pytest.approx(84 * hour / 2) and faster.fewest_hours == pytest.approx(24 * hour / 2)
    assert price.estimate.device_hours == pytest.approx(atss.hours + faster.hours)
    assert {(a.row, a.arm): a.runs_to_train for a in price.estimate.arms}[("atss", "baseline")] == 41
    text = "\n".join(format_price(price))
    line = next(line.split() for line in text.splitlines() if line.startswith("  atss "))
    assert line == ["atss", "0.15", "42", "42", *device_time_text(atss.hours, "GPU").split(), "12", "(pilot", "9",
                    "to", "12)", *device_time_text(atss.fewest_hours, "GPU").split()]
    assert "cannot reach" not in text and "estimate at the resolution: " in text

    spec = dataclasses.replace(spec, resolution=dataclasses.replace(spec.resolution, max_seeds=20))
    capped = price_resolution(_plan(spec), est, {"atss": 0.15, "faster-rcnn": None}, "p")
    atss, faster = capped.rows
    assert (atss.seeds.run, atss.hours, atss.needed_hours) == (20, pytest.approx(40 * hour), pytest.approx(84 * hour))
    assert faster.seeds is None  # the prior measured no sd for it: its pilot's runs counted, said so
    text = "\n".join(format_price(capped))
    assert "atss: --max-seeds 20 cannot reach ±0.1 from a pilot of 3: it needs 42 seeds" in text
    assert f"its 22 more seeds would cost {device_time_text(44 * hour, 'GPU')}" in text
    assert "faster-rcnn           -  not priced: no sd measured for this row" in text

    unpriced = price_resolution(_plan(spec), _estimate({"atss": None, "faster-rcnn": None}),
                                dict.fromkeys(spec.rows, 0.15), "assumed")  # no seconds per iteration: seeds alone
    assert [(r.seeds.run, r.hours) for r in unpriced.rows] == [(20, None), (20, None)]
    text = "\n".join(format_price(unpriced))
    assert "no device-hours: pass --calibrate N" in text and "would cost" not in text


def test_a_reproduction_prior_gives_each_rows_primary_sd():
    """ATSS: its box AP's sd of the paired differences; Mask R-CNN: the larger of box and mask AP's."""
    prior = prior_of(_reproduction(), "/somewhere/earlier/reproduce.json")
    assert prior.kind == "reproduction" and set(prior.rows) == {"atss", "mask-rcnn"}
    assert prior.sd_for("atss") == pytest.approx(_sd_of(ATSS))
    assert _sd_of(MASK_SEGM) > _sd_of(MASK_BOX)
    assert prior.sd_for("mask-rcnn") == pytest.approx(_sd_of(MASK_SEGM))
    assert prior.sd_for("fcos") is None and prior.largest == pytest.approx(_sd_of(MASK_SEGM))


def test_a_confirmation_prior_gives_its_largest_sd_to_every_row():
    c = _confirmation()
    prior = prior_of(c, "x/confirmation.json")
    largest = max(100 * v.paired.diff_sd for v in c.variants)  # a fraction's sd in AP points
    assert prior.kind == "confirmation" and prior.sd_for("atss") == prior.sd_for("fcos") == pytest.approx(largest)


def test_prior_is_read_by_name_folder_or_file_and_refused_otherwise(tmp_path):
    storage = tmp_path / "results"
    (storage / "earlier").mkdir(parents=True)
    (storage / "earlier" / REPRODUCTION_FILE).write_text(_reproduction().to_json())
    (storage / "sweep-a").mkdir()
    (storage / "sweep-a" / CONFIRMATION_FILE).write_text(_confirmation().to_json())
    spec = StorageSpec(str(storage))
    for given in ("earlier", str(storage / "earlier"), str(storage / "earlier" / REPRODUCTION_FILE)):
        prior = read_prior(given, spec)
        assert prior.kind == "reproduction" and prior.sd_for("atss") == pytest.approx(_sd_of(ATSS)), given
        assert prior.location == str(storage / "earlier" / REPRODUCTION_FILE)
    assert read_prior("sweep-a", spec).kind == "confirmation"
    renamed = tmp_path / "copy.json"  # a record under another file name is recognised by its fields
    renamed.write_text(_confirmation().to_json())
    assert read_prior(str(renamed), spec).kind == "confirmation"

    (storage / "a-run").mkdir()
    (storage / "a-run" / RESULTS_FILE).write_text(json.dumps({"name": "a-run", "metrics": {}}))
    empty = _reproduction("empty")
    for row in empty.rows:
        row.metrics = []
    (storage / "empty").mkdir()
    (storage / "empty" / REPRODUCTION_FILE).write_text(empty.to_json())
    for given, says in (("a-run", "no reproduce.json or confirmation.json at"),
                        (str(storage / "a-run" / RESULTS_FILE), "is not a reproduction (without"),
                        ("nowhere", "no reproduce.json or confirmation.json at"),
                        (str(tmp_path / "missing" / "reproduce.json"), "no such file or folder"),
                        ("empty", "the reproduction measured no sd")):
        with pytest.raises(PriorError, match="--prior") as err:
            read_prior(given, spec)
        assert says in str(err.value) and "\n" not in str(err.value), given


def test_a_bad_prior_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    """Refused before the plan is prepared: no Ray, nothing under --storage."""
    storage = tmp_path / "results"
    not_ours = tmp_path / "leaderboard.json"
    not_ours.write_text(json.dumps({"sweep": "s", "trials": []}))
    code = main(["reproduce", "--rows", "atss", "--storage", str(storage), "--dry-run", "--resolution", "0.1",
                 "--prior", str(not_ours)])
    err = capsys.readouterr().err
    assert code == 2 and "--prior" in err and "is not a reproduction" in err and "confirmation" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not storage.exists()


def test_tune_dry_run_says_the_confirmations_seeds_per_comparison():
    spec = SweepSpec(config=Path("atss.py"), train=RunSettings(), space={}, confirm=2, seeds=3,
                     resolution=Resolution(target=0.15, assume_sd=0.15))
    lines = confirmation_lines(spec)
    assert lines[0].startswith("confirm:  the top 2 variant(s) and the baseline, a pilot of 3 seeds each; each "
                               "comparison to ±0.15 AP, at most 20 seeds")
    assert lines[1].strip() == ("at sd 0.15 AP (assumed): 19 seeds per comparison, 3 x 19 runs; the fewest: "
                                "7 (pilot 6 to 7)")
    capped = confirmation_lines(SweepSpec(config=Path("atss.py"), train=RunSettings(), space={}, confirm=1, seeds=3,
                                          resolution=Resolution(target=0.1, assume_sd=0.15)))
    assert "42 seeds per comparison, 20 run (--max-seeds), 2 x 20 runs" in capped[1]
    assert capped[2].strip().startswith("--max-seeds 20 cannot reach ±0.1 from a pilot of 3: it needs 42 seeds")
    plain = SweepSpec(config=Path("atss.py"), train=RunSettings(), space={}, confirm=2, seeds=2)
    assert confirmation_lines(plain) == ["confirm:  the top 2 variant(s) and the baseline, 2 seeds each"]


def _intervals(fig) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The intervals drawn: one segment ((low, y), (high, y)) each."""
    collections = [c for ax in fig.axes for c in ax.collections if c.get_gid() == INTERVALS_GID]
    assert len(collections) == 1 and isinstance(collections[0], LineCollection)
    return [tuple(map(tuple, segment)) for segment in collections[0].get_segments()]


def test_the_forest_plot_holds_one_interval_per_row_and_metric_and_the_claims():
    rep = _reproduction()
    forest = reproduction_forest(dataclasses.replace(rep, resolution=0.3))  # run to ±0.3 AP
    compared = [m for row in rep.rows for m in row.metrics]
    assert len(compared) == 4  # atss: box AP, AP50; mask-rcnn: box AP, mask AP (the rest not reported)
    fig = forest_figure(forest)
    drawn = _intervals(fig)
    assert len(drawn) == len(compared)
    assert [(low, high) for (low, _), (high, _) in drawn] == [
        (pytest.approx(m.paired.low), pytest.approx(m.paired.high)) for m in compared]
    ax = fig.axes[0]
    claims = [line for line in ax.lines if line.get_label() == "reference table's claim"]
    assert list(claims[0].get_xdata()) == [m.reference_delta for m in compared]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{r.model} {m.label}" for r in rep.rows for m in r.metrics]
    assert ax.patches and ax.patches[0].get_label() == "±H = ±0.3"  # the resolution's band
    assert forest_png(forest).startswith(b"\x89PNG")

    c = _confirmation()
    fig = forest_figure(confirmation_forest(c))
    drawn = _intervals(fig)
    assert [(low, high) for (low, _), (high, _) in drawn] == [
        (pytest.approx(100 * v.paired.low), pytest.approx(100 * v.paired.high)) for v in c.variants]
    assert not any(line.get_label() == "reference table's claim" for line in fig.axes[0].lines)
    assert not fig.axes[0].patches  # no H given


def test_the_reproductions_writer_puts_its_forest_plot_beside_it(tmp_path):
    spec = ReproduceSpec(train=RunSettings(), rows=("atss", "mask-rcnn"), seeds=len(SEEDS))
    storage = LocalStorage(StorageSpec(str(tmp_path)))
    plan = SimpleNamespace(spec=spec, name="earlier", location=storage.location("earlier"), storage=storage,
                           manifest=ReproduceManifest(rows=list(spec.rows), seeds=SEEDS, settings={}))
    write_reproduction(plan, _outcomes())
    assert (tmp_path / "earlier" / REPRODUCTION_PNG).read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "earlier" / REPRODUCTION_FILE).is_file()


def _files(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.subprocess
def test_dry_run_prices_the_resolution_per_row_from_an_assumed_or_a_prior_sd(shapes_dir, tmp_path):
    """`reproduce --dry-run --resolution` with given seconds per iteration (no Ray): per row the seeds and
    device-hours, the fewest seeds' pilot; with --prior a stored reproduction's sd per row. Nothing written."""
    storage = tmp_path / "results"
    common = ("reproduce", "--rows", "atss", "faster-rcnn", "--seeds", 3, "--data", shapes_dir, "--small",
              "--image-size", 128, "--batch-size", 4, "--samples", 0, "--epochs", 2, "--storage", storage,
              "--max-concurrent", 2, "--dry-run", "--seconds-per-iter", "atss=0.5", "faster-rcnn=0.25",
              "--resolution", 0.1)
    proc = yolor_ray(*common, "--assume-sd", 0.15, "--max-seeds", 50)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _priced_rows(proc.stdout)
    # 16 images / batch 4 x 2 epochs = 8 iterations a run, 1 CPU: 42 seeds x 2 arms; the fewest: 12 x 2
    for row, seconds, to_train, fewest in (("atss", 0.5, "5.6 CPU-minutes", "1.6 CPU-minutes"),
                                           ("faster-rcnn", 0.25, "2.8 CPU-minutes", "48 CPU-seconds")):
        assert rows[row][1:6] == ["0.15", "42", "42", *to_train.split()], proc.stdout  # 84 runs x 8 x seconds
        assert rows[row][6:] == ["12", "(pilot", "9", "to", "12)", *fewest.split()], proc.stdout  # 24 runs
    assert "estimate at the resolution: 8.4 CPU-minutes; wall " in proc.stdout  # 84 x 8 x (0.5 + 0.25) s
    assert "cannot reach" not in proc.stdout and not storage.exists()

    earlier = {"atss": {"baseline": [0.394, 0.391, 0.396, 0.392], "yolor": [0.395, 0.394, 0.398, 0.392]},
               "faster-rcnn": {"baseline": [0.37, 0.372, 0.371, 0.369], "yolor": [0.371, 0.3725, 0.3715, 0.3695]}}
    outcomes = [RunOutcome(f"{row}-{arm}", seed, f"runs/{row}-{arm}-seed{seed}", "completed",
                           metrics={"coco/bbox_mAP": values[i]})
                for row, arms in earlier.items() for arm, values in arms.items() for i, seed in enumerate(SEEDS)]
    record = summarize(ReproduceSpec(train=RunSettings(), rows=tuple(earlier), seeds=len(SEEDS)), "earlier",
                       str(storage / "earlier"), {}, outcomes)
    (storage / "earlier").mkdir(parents=True)
    (storage / "earlier" / REPRODUCTION_FILE).write_text(record.to_json())
    before = _files(storage)
    proc = yolor_ray(*common, "--prior", "earlier")  # its name under --storage; the default cap of 20
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"measured by the reproduction {storage / 'earlier' / REPRODUCTION_FILE}" in proc.stdout
    for row, seconds in (("atss", 0.5), ("faster-rcnn", 0.25)):
        sd = _sd_of(earlier[row])
        needed = max(3, math.ceil((t975(2) * sd / 0.1) ** 2))
        run = min(needed, 20)
        assert _priced_rows(proc.stdout)[row][1:6] == [f"{sd:.3g}", str(needed), str(run),
                                                       *device_time_text(2 * run * 8 * seconds / 3600, "CPU").split()]
        capped = f"  {row}: --max-seeds 20 cannot reach ±0.1 from a pilot of 3: it needs {needed} seeds"
        assert (capped in proc.stdout) == (needed > 20), proc.stdout
    assert "needs 31 seeds" in proc.stdout and "faster-rcnn:" not in proc.stdout  # sd 0.129 and 0.025 AP
    assert _files(storage) == before


def _priced_rows(stdout: str) -> dict[str, list[str]]:
    """The dry run's resolution table: row -> its cells (row, sd, N, run, hours, the fewest N (pilot ...), hours)."""
    return {line.split()[0]: line.split() for line in stdout.splitlines()
            if line.startswith(("  atss ", "  faster-rcnn ")) and "(pilot" in line}


