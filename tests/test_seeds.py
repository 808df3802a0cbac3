"""Seeds on demand in the paired layer (``--resolution H``), without Ray: the pilot's paired sd
fixes each comparison's seeds (the largest N over its primary metrics), the arms run the most
any of their comparisons need, the second stage is planned beside the pilot and trained in one
more pass, Stein's interval over all N pairs of unrounded APs, what each comparison reached in
its record and its table line; a reproduction's name holds its resolution."""
import dataclasses
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from yolor_ray.paired.plan import DONE, NEW, PlannedRun
from yolor_ray.paired.stages import Comparison, FixedSeeds, TwoStages, rest_device_hours, seeding
from yolor_ray.paired.summary import outcome_of, paired_metric
from yolor_ray.records import (
    CAPPED,
    INCOMPLETE,
    PILOT_INCOMPLETE,
    RESOLVED,
    Confirmation,
    ConfirmedVariant,
    Reproduction,
    RunManifest,
    RunOutcome,
    RunResults,
    SeedsReached,
)
from yolor_ray.resolution import Resolution, ResolutionError, seeds_needed, stein_interval
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.table import format_confirmation
from yolor_ray.train.spec import TrainSpec
from yolor_ray.units import device_time_text

BOX, MASK = "coco/bbox_mAP", "coco/segm_mAP"
UNROUNDED_BOX, UNROUNDED_MASK = "coco/bbox_unrounded_mAP", "coco/segm_unrounded_mAP"
ARM_SPEC = TrainSpec(config=Path("x.py"), storage=StorageSpec("/elsewhere"))
ROW = Comparison("atss-yolor", "atss-baseline", (BOX,), scale=100)


def _run(arm: str, seed: int, box: float | None, mask: float | None = None, hours: float = 1.0,
         rounded: bool = False, ap50: bool = False) -> RunOutcome:
    """A completed run whose unrounded APs are ``box`` (and ``mask``; ``ap50``: box AP50 at box +
    0.2), beside mmdet's rounded ones; ``rounded``: a run stored before the unrounded keys
    existed. ``box`` None: it failed."""
    run = PlannedRun(arm, seed, ARM_SPEC, DONE)
    if box is None:
        return outcome_of(run, f"runs/{arm}-seed{seed}", None, "RuntimeError: boom", 1)
    metrics = {BOX: round(box, 3)} if rounded else {BOX: round(box, 3), UNROUNDED_BOX: box}
    if mask is not None:
        metrics |= {MASK: round(mask, 3), UNROUNDED_MASK: mask}
    if ap50:
        metrics |= {"coco/bbox_mAP_50": round(box + 0.2, 3), "coco/bbox_unrounded_mAP_50": box + 0.2}
    results = RunResults(name="r", location="l", config="c.py", model="ATSS", metrics=metrics, world_size=1,
                         history=[{"epoch": 1, "epoch_time_s": 3600 * hours}])
    return outcome_of(run, f"runs/{arm}-seed{seed}", results, None, 1)


def _row(baseline: list[float | None], yolor: list[float | None], **extra) -> list[RunOutcome]:
    return [_run(arm, seed, value, **extra) for arm, values in (("atss-baseline", baseline), ("atss-yolor", yolor))
            for seed, value in enumerate(values)]


# Unrounded APs (fractions; x100 the row's %). The pilot's differences: 0.25, 0.15, 0.20 AP points
# (sd 0.05); of mmdet's rounded APs: 0.3, 0.2, 0.2.
BASE = [0.40012, 0.40231, 0.39874, 0.40105, 0.40052, 0.39911]
YOLOR = [0.40262, 0.40381, 0.40074, 0.40195, 0.40192, 0.40071]


def test_the_pilots_sd_fixes_the_seeds_and_steins_interval_takes_all_of_them():
    stages = TwoStages((0, 1, 2), target=0.075, max_seeds=20)
    pilot = _row(BASE[:3], YOLOR[:3])
    s0 = statistics.stdev([0.25, 0.15, 0.2])  # AP points: 0.05
    need = stages.needs(pilot, ROW)
    assert need.pilot_sd == pytest.approx(s0) and need.run == seeds_needed(3, 0.05, 0.075, 20).run
    # (t(0.975, 2) x 0.05 / 0.075)^2 = 8.23: 9 seeds in all, the pilot's 0..2, then 3..8 for both arms
    assert need.needed == 9 and not need.capped
    assert stages.second_stage(pilot, [ROW]) == {arm: [3, 4, 5, 6, 7, 8] for arm in ("atss-yolor", "atss-baseline")}
    assert FixedSeeds((0, 1, 2)).second_stage(pilot, [ROW]) == {}

    everything = _row(BASE + [0.4] * 3, YOLOR + [0.4012] * 3)
    assert stages.needs(everything, ROW) == need  # N is the pilot's: the later seeds do not move it
    paired = stages.paired(everything, ROW, BOX)
    diffs = [100 * (y - b) for y, b in zip(YOLOR + [0.4012] * 3, BASE + [0.4] * 3)]
    expected = stein_interval(diffs, 3, s0)
    assert paired.seeds == list(range(9)) and paired.pairs == 9 and paired.pilot == 3
    assert paired.pilot_sd == pytest.approx(s0) and paired.diff_sd == pytest.approx(statistics.stdev(diffs))
    assert (paired.low, paired.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert paired.half_width == pytest.approx(4.302653 * s0 / 3, rel=1e-6) and paired.half_width <= 0.075
    reached = stages.reached(everything, ROW, [paired])
    assert (reached.status, reached.needed, reached.planned, reached.run) == (RESOLVED, 9, 9, 9)
    assert reached.half_width == pytest.approx(paired.half_width) and reached.rest_device_hours is None


def test_differences_are_of_unrounded_aps_and_of_rounded_ones_for_older_runs():
    """mmdet's APs to 0.001 (0.1 AP point) make the pilot's differences 0.3, 0.2, 0.2 points; the
    runs measured 0.25, 0.15, 0.20."""
    unrounded = paired_metric(_row(BASE[:3], YOLOR[:3]), "atss-yolor", "atss-baseline", [0, 1, 2], BOX, scale=100)
    older = paired_metric(_row(BASE[:3], YOLOR[:3], rounded=True), "atss-yolor", "atss-baseline", [0, 1, 2], BOX,
                          scale=100)
    assert unrounded.baseline.values == pytest.approx([100 * v for v in BASE[:3]], abs=1e-9)
    assert older.baseline.values == pytest.approx([40.0, 40.2, 39.9], abs=1e-9)
    assert unrounded.diff_mean == pytest.approx(0.2) and older.diff_mean == pytest.approx(0.7 / 3)
    assert unrounded.diff_sd == pytest.approx(0.05)
    assert older.diff_sd == pytest.approx(statistics.stdev([0.3, 0.2, 0.2]))


def test_a_mask_row_runs_the_larger_n_of_box_and_mask_ap_and_a_metric_without_values_does_not_count():
    mask_row = Comparison("mask-yolor", "mask-base", (BOX, MASK), scale=100)
    stages = TwoStages((0, 1, 2), target=0.1, max_seeds=30)

    def runs(box_diffs, mask_diffs=None):
        found = []
        for seed in range(3):
            found.append(_run("mask-base", seed, 0.4, None if mask_diffs is None else 0.35))
            found.append(_run("mask-yolor", seed, 0.4 + box_diffs[seed] / 100,
                              None if mask_diffs is None else 0.35 + mask_diffs[seed] / 100))
        return found

    quiet_box, noisy_mask = [0.10, 0.12, 0.11], [0.1, 0.3, 0.2]
    both = stages.needs(runs(quiet_box, noisy_mask), mask_row)
    box_alone = seeds_needed(3, statistics.stdev(quiet_box), 0.1, 30)
    assert both.pilot_sd == pytest.approx(0.1) and both.needed == 19 > box_alone.needed == 3  # (4.30 x 0.1 / 0.1)^2
    alone = stages.needs(runs(quiet_box), mask_row)  # no masks at this scale: box AP alone
    assert (alone.needed, alone.pilot_sd) == (3, pytest.approx(0.01))


def test_the_pilot_must_be_whole_before_n_is_known():
    stages = TwoStages((0, 1, 2), target=0.1, max_seeds=10)
    failed = _row(BASE[:3], [YOLOR[0], None, YOLOR[2]])
    assert stages.needs(failed, ROW) is None and stages.second_stage(failed, [ROW]) == {}
    paired = stages.paired(failed, ROW, BOX)
    assert paired.pilot is None and paired.pairs == 2 and paired.has_interval  # the usual interval meanwhile
    reached = stages.reached(failed, ROW, [paired])
    assert (reached.status, reached.needed, reached.run) == (PILOT_INCOMPLETE, None, 0)


def test_capped_and_incomplete_comparisons_and_what_the_rest_would_cost():
    stages = TwoStages((0, 1, 2), target=0.005, max_seeds=4)  # pilot sd 0.05 AP: N = 1852
    capped = _row(BASE[:4], YOLOR[:4], hours=0.5)
    need = stages.needs(capped, ROW)
    assert (need.needed, need.run, need.capped) == (1852, 4, True)
    paired = stages.paired(capped, ROW, BOX)
    reached = stages.reached(capped, ROW, [paired])
    assert (reached.status, reached.planned, reached.run) == (CAPPED, 4, 4)
    # both arms' 1848 missing seeds at the mean 0.5 device-hours of the comparison's runs
    assert reached.rest_device_hours == pytest.approx(2 * 1848 * 0.5)
    assert rest_device_hours([], ROW, 3) is None
    assert reached.half_width == pytest.approx(4.302653 * need.pilot_sd / 2, rel=1e-6)
    assert reached.half_width > stages.target

    missing = _row(BASE[:4], YOLOR[:3] + [None])
    reached = stages.reached(missing, ROW, [stages.paired(missing, ROW, BOX)])
    assert (reached.status, reached.planned, reached.run) == (INCOMPLETE, 4, 3)


def test_a_shared_baseline_runs_the_most_any_variant_needs_and_the_h_is_in_the_values_unit():
    """A confirmation: values as mmdet reports them (fractions), H in AP points."""
    stages = seeding([0, 1, 2], Resolution(target=0.15, max_seeds=12), ap_points=100)
    assert isinstance(stages, TwoStages) and stages.target == pytest.approx(0.0015)
    assert seeding([0, 1], Resolution(), ap_points=100) == FixedSeeds((0, 1))
    quiet, noisy = Comparison("quiet", "baseline", (BOX,)), Comparison("noisy", "baseline", (BOX,))
    pilot = [_run("baseline", s, 0.4) for s in range(3)]
    pilot += [_run("quiet", s, 0.4 + d) for s, d in enumerate((0.001, 0.0012, 0.0011))]  # sd 0.01 AP: N 3
    pilot += [_run("noisy", s, 0.4 + d) for s, d in enumerate((0.001, 0.003, 0.002))]  # sd 0.1 AP: N 9
    assert stages.needs(pilot, quiet).needed == 3 and stages.needs(pilot, noisy).needed == 9
    assert stages.second_stage(pilot, [quiet, noisy]) == {"noisy": [3, 4, 5, 6, 7, 8],
                                                           "baseline": [3, 4, 5, 6, 7, 8]}
    # the quiet variant is compared over its own 3 seeds, not the baseline's 9
    assert stages.paired(pilot, quiet, BOX).seeds == [0, 1, 2]
    later = TwoStages((5, 6, 7), target=0.0015, max_seeds=12)
    assert later.first(5) == [5, 6, 7, 8, 9] and later.first(2) == [5, 6]


def test_the_second_stage_is_planned_beside_the_pilot_with_its_configs_as_prepared(tmp_path, monkeypatch):
    from yolor_ray.paired import plan as planning

    prepared = []
    monkeypatch.setattr(planning, "fingerprint_of", lambda spec, inputs=None: "fp")
    monkeypatch.setattr(planning, "prepare_config", lambda spec, known: prepared.append(spec.name) or
                        SimpleNamespace(spec=spec, inputs=known, fingerprint="fp"))
    runs = tmp_path / "rep" / "runs"
    for name in ("b-seed0", "b-seed3"):
        (runs / name).mkdir(parents=True)
        for file in ("run.json", "results.json"):
            (runs / name / file).write_text(RunManifest(config="x.py", fingerprint="fp").to_json())
    storage = open_storage(StorageSpec(str(tmp_path)))
    arms = [planning.Arm("b", ARM_SPEC), planning.Arm("v", ARM_SPEC)]
    pilot = planning.plan_paired(arms, [0, 1, 2], storage, "rep", "runs", in_actor=True, kind="reproduction")
    second = planning.extend_plan(pilot, {"b": [3, 4], "v": [3]})
    assert prepared == ["b-seed0", "v-seed0"]  # once per arm, for both stages
    assert [(r.name, r.seed, r.state) for r in second.runs] == [("b-seed3", 3, DONE), ("b-seed4", 4, NEW),
                                                                 ("v-seed3", 3, NEW)]
    assert second.runs[1].spec.storage.uri == str(runs) and second.seeds == (0, 1, 2)
    assert planning.extend_plan(pilot, {}).runs == ()


def test_run_in_stages_trains_the_pilot_then_the_second_stage_and_starts_ray_only_to_train(monkeypatch):
    """The stages with a stand-in for training: a 'stored' run is done, a pending one 'trains'
    (it is stored with its value); the second pass plans from the pilot's outcomes; run again,
    nothing is pending and no session starts."""
    from yolor_ray.paired import launch

    values = {("atss-baseline", s): v for s, v in enumerate(BASE + [0.4] * 3)}
    values |= {("atss-yolor", s): v for s, v in enumerate(YOLOR + [0.4012] * 3)}
    stored: set[tuple[str, int]] = set()
    trained: list[list[str]] = []
    sessions: list[str] = []

    def plan_of(seeds: dict[str, list[int]]):
        runs = tuple(PlannedRun(arm, s, TrainSpec(config=Path("x.py"), name=f"{arm}-seed{s}"),
                                DONE if (arm, s) in stored else NEW) for arm, arm_seeds in seeds.items()
                     for s in arm_seeds)
        return SimpleNamespace(runs=runs, seeds=(0, 1, 2), pending=tuple(r for r in runs if r.state != DONE), data=None)

    def outcomes(plan, errors):
        return [_run(r.arm, r.seed, values[(r.arm, r.seed)]) for r in plan.runs]

    def run_paired(plan, at_a_time):
        trained.append([r.name for r in plan.pending])
        stored.update((r.arm, r.seed) for r in plan.pending)
        return outcomes(plan, {})

    class Session:
        def __enter__(self):
            sessions.append("started")
            return True

        def __exit__(self, *exc):
            sessions.append("stopped")

    monkeypatch.setattr(launch, "outcomes", outcomes)
    monkeypatch.setattr(launch, "run_paired", run_paired)
    monkeypatch.setattr(launch, "extend_plan", lambda plan, more: plan_of(more))
    stages = TwoStages((0, 1, 2), target=0.075, max_seeds=20)
    arms = {"atss-baseline": [0, 1, 2], "atss-yolor": [0, 1, 2]}
    started: list[int] = []
    found = launch.run_in_stages(plan_of(arms), stages, [ROW], Session, at_a_time=lambda local: 2,
                                 can_start=lambda: started.append(len(trained)))
    assert started == [0]  # once, before the first run trains
    extra = [f"{arm}-seed{s}" for arm in arms for s in range(3, 9)]
    assert [sorted(names) for names in trained] == [[f"{arm}-seed{s}" for arm in arms for s in range(3)], extra]
    assert sessions == ["started", "stopped"] and len(found) == 18  # one Ray session for both passes
    assert stages.reached(found, ROW, [stages.paired(found, ROW, BOX)]).status == RESOLVED

    stored.discard(("atss-yolor", 7))  # a run the killed driver did not finish
    again = launch.run_in_stages(plan_of(arms), stages, [ROW], Session, at_a_time=lambda local: 2)
    assert trained[2:] == [["atss-yolor-seed7"]] and len(again) == 18
    launch.run_in_stages(plan_of(arms), stages, [ROW], Session, at_a_time=lambda local: 2)
    assert len(trained) == 3 and sessions == ["started", "stopped"] * 2  # all done: no session


def test_the_records_keep_what_each_comparison_reached_and_older_files_load():
    reached = SeedsReached(CAPPED, 0.001, 3, primary=[BOX], pilot_sd=0.002, needed=40, planned=4, run=4,
                           half_width=0.0043, rest_device_hours=72.0)
    runs = _row(BASE[:4], YOLOR[:4])
    paired = TwoStages((0, 1, 2), target=0.001, max_seeds=4).paired(
        runs, Comparison("atss-yolor", "atss-baseline", (BOX,)), BOX)
    confirmation = Confirmation(metric=BOX, seeds=[0, 1, 2], method="stein", baseline=paired.baseline,
                                variants=[ConfirmedVariant("v", {}, paired, reached)], runs=runs, resolution=0.1)
    again = Confirmation.from_json(confirmation.to_json())
    assert again == confirmation and again.variants[0].reached.needed == 40
    text = "\n".join(format_confirmation(again))
    assert "a pilot of 3 seeds (0, 1, 2), run to ±0.1 AP" in text and "seeds: pilot, run, ± half-width" in text
    assert (f"pilot 3, 4 run, ±{paired.half_width:.4f}: capped: 40 seeds needed, 4 run; the rest would cost "
            "72 device-hours (a higher --max-seeds runs them)") in text
    assert "0: 0.400 → 0.403; 1: 0.402 → 0.404; 2: 0.399 → 0.401; 3: 0.401 → 0.402 |" in text  # the pilot and seed 3
    older = Reproduction.from_dict(dict(name="n", location="l", method="m", device="GPU", seeds=[0], settings={},
                                        schema=2, rows=[dict(row="atss", model="ATSS", baseline_arm="b",
                                                             yolor_arm="y")]))
    assert older.resolution is None and older.rows[0].reached is None


def test_a_reproductions_name_holds_its_resolution_but_not_its_seed_cap(tmp_path):
    from yolor_ray.errors import UserError
    from yolor_ray.records import ReproduceManifest
    from yolor_ray.reproduce.plan import _check_name, settings_of
    from yolor_ray.reproduce.spec import ReproduceSpec
    from yolor_ray.train.spec import RunSettings

    def spec(**resolution):
        return ReproduceSpec(train=RunSettings(), rows=("atss",), seeds=3, resolution=Resolution(**resolution))

    storage = open_storage(StorageSpec(str(tmp_path)))
    (tmp_path / "rep").mkdir()
    stored = settings_of(spec(target=0.1, max_seeds=5))
    (tmp_path / "rep" / "reproduce_plan.json").write_text(ReproduceManifest(["atss"], [0, 1, 2], stored).to_json())
    assert stored["resolution"] == 0.1 and "max_seeds" not in stored
    assert _check_name(storage, "rep", settings_of(spec(target=0.1, max_seeds=12))) is not None  # a higher cap
    with pytest.raises(UserError, match=r"was started with resolution 0\.1 \(now 0\.2\)"):
        _check_name(storage, "rep", settings_of(spec(target=0.2)))
    assert settings_of(spec())["resolution"] is None  # as an older reproduction's (no key) reads


def test_a_confirmation_to_a_resolution_needs_an_ap_metric():
    from yolor_ray.train.spec import RunSettings
    from yolor_ray.tune.spec import SweepSpec

    with pytest.raises(ResolutionError, match="--metric must be a COCO AP such as coco/bbox_mAP, got 'train/loss'"):
        SweepSpec(config=Path("c.py"), train=RunSettings(), space={}, confirm=1, seeds=3, metric="train/loss",
                  resolution=Resolution(target=0.1))
    assert math.isfinite(SweepSpec(config=Path("c.py"), train=RunSettings(), space={}, confirm=1, seeds=3,
                                   metric="coco/segm_mAP_50", resolution=Resolution(target=0.1)).seeds)


def test_a_reproduction_to_a_resolution_says_per_row_what_it_reached():
    """ATSS resolved by its pilot of 3; FCOS (noisier) capped at 4 of the seeds its pilot asks
    for: Stein's interval per metric in %, the verdict on box AP's line, the rest's CPU time."""
    from yolor_ray.reproduce.spec import ReproduceSpec
    from yolor_ray.reproduce.summary import summarize
    from yolor_ray.table import format_reproduction
    from yolor_ray.train.spec import RunSettings

    atss = _row(BASE[:3], YOLOR[:3], ap50=True)  # pilot sd 0.05 AP: 3 seeds reach ±0.3
    noisy = [0.0, 0.004, 0.001, 0.002]  # differences 0.25, 0.55, 0.30, 0.29 AP points: pilot sd 0.16
    fcos = [dataclasses.replace(o, arm=o.arm.replace("atss", "fcos"), device_hours=0.25)
            for o in _row(BASE[:4], [v + d for v, d in zip(YOLOR, noisy)], ap50=True)]
    spec = ReproduceSpec(train=RunSettings(), rows=("atss", "fcos"), seeds=3,
                         resolution=Resolution(target=0.3, max_seeds=4))
    rep = summarize(spec, "deep", "/r/deep", {"epochs": 1}, atss + fcos)
    atss_row, fcos_row = rep.rows
    assert rep.resolution == 0.3 and rep.method.startswith("Stein's two-stage paired t")
    assert (atss_row.reached.status, atss_row.reached.needed, atss_row.reached.run) == (RESOLVED, 3, 3)
    box, ap50 = atss_row.metrics[0].paired, atss_row.metrics[1].paired
    assert box.seeds == [0, 1, 2] and box.pilot == ap50.pilot == 3 and box.half_width <= 0.3
    capped = fcos_row.reached
    assert (capped.status, capped.planned, capped.run) == (CAPPED, 4, 4) and capped.needed > 4
    assert capped.needed == seeds_needed(3, statistics.stdev([0.25, 0.55, 0.30]), 0.3, 4).needed
    assert capped.rest_device_hours == pytest.approx(2 * (capped.needed - 4) * 0.25)
    assert fcos_row.metrics[0].paired.seeds == [0, 1, 2, 3]

    md = format_reproduction(rep)
    assert "the reference table's rows, a pilot of 3 seeds (0, 1, 2), run to ±0.3 AP" in md
    assert f"| pilot 3, 3 run, ±{box.half_width:.2f}: resolved to ±0.3 |" in md
    assert f"| pilot 3, 3 run, ±{ap50.half_width:.2f} |" in md  # box AP50: no verdict of its own
    assert (f"| pilot 3, 4 run, ±{capped.half_width:.2f}: capped: {capped.needed} seeds needed, 4 run; the rest "
            f"would cost {device_time_text(capped.rest_device_hours, 'CPU')} (a higher --max-seeds runs them) |") in md
    assert Reproduction.from_json(rep.to_json()) == rep


def test_a_confirmation_runs_each_variant_as_far_as_it_needs_and_the_baseline_the_furthest(tmp_path, monkeypatch):
    """``tune --confirm 2 --seeds 3 --resolution 0.15``, its training stood in for: the quiet
    variant stops at its pilot, the noisy one and the shared baseline run 9 seeds; each variant is
    compared over its own seeds, with Stein's interval, and the record says what each reached."""
    from yolor_ray.records import LeaderboardEntry
    from yolor_ray.tune import confirm

    pilot = [_run("baseline", s, 0.4) for s in range(3)]
    pilot += [_run("quiet", s, 0.4 + d) for s, d in enumerate((0.001, 0.0012, 0.0011))]  # sd 0.01 AP
    pilot += [_run("noisy", s, 0.4 + d) for s, d in enumerate((0.001, 0.003, 0.002))]  # sd 0.1 AP
    asked = {}

    def run_in_stages(paired, stages, comparisons, session, at_a_time):
        asked.update(more=stages.second_stage(pilot, comparisons), at_a_time=at_a_time(True))
        with session() as local:
            asked["local"] = local
        return pilot + [_run(arm, s, 0.4 + 0.002 * (arm == "noisy")) for arm, seeds in asked["more"].items()
                        for s in seeds]

    monkeypatch.setattr(confirm, "confirmation_arms", lambda plan, top: [])
    monkeypatch.setattr(confirm, "plan_paired", lambda *args, **kwargs: SimpleNamespace(pending=(), runs=()))
    monkeypatch.setattr(confirm, "run_in_stages", run_in_stages)
    spec = SimpleNamespace(metric=BOX, seeds=3, confirm=2, resolution=Resolution(target=0.15, max_seeds=12))
    plan = SimpleNamespace(spec=spec, trial_spec=SimpleNamespace(seed=0), storage=open_storage(StorageSpec(
        str(tmp_path))), name="sweep", in_actor=True, inputs=None)
    ranked = [LeaderboardEntry(trial=label, variant={"label": label}, label=label, status="completed")
              for label in ("quiet", "noisy")]
    c = confirm.run_confirmation(plan, ranked, max_concurrent=2, local=True)
    assert asked == dict(more={"noisy": [3, 4, 5, 6, 7, 8], "baseline": [3, 4, 5, 6, 7, 8]}, at_a_time=2, local=True)
    quiet, noisy = c.variants
    assert (quiet.reached.status, quiet.reached.needed, quiet.paired.seeds) == (RESOLVED, 3, [0, 1, 2])
    assert (noisy.reached.status, noisy.reached.needed, noisy.paired.seeds) == (RESOLVED, 9, list(range(9)))
    assert noisy.paired.pilot == 3 and noisy.reached.half_width <= noisy.reached.target == pytest.approx(0.0015)
    assert len(c.baseline.values) == 9 and c.seeds == [0, 1, 2] and c.resolution == 0.15
    assert c.method.startswith("Stein's") and len(c.runs) == 21
    assert Confirmation.from_json((tmp_path / "sweep" / "confirmation.json").read_text()) == c
    assert "resolved to ±0.0015" in "\n".join(format_confirmation(c))
