"""The paired-runs layer's own logic, without Ray: one name per arm and seed, the sampler's
seed, the done / unfinished / new rule, the outcomes and the paired maths; the one name
check of train, tune and reproduce; the typed records read back, and an earlier version's."""
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from yolor_ray.names import NameTakenError, default_name, held_manifest
from yolor_ray.noise import paired_difference
from yolor_ray.records import (
    ArmValues,
    Confirmation,
    ConfirmedVariant,
    Leaderboard,
    RecordError,
    Reproduction,
    RunManifest,
    RunOutcome,
    RunResults,
    RunState,
)
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.table import format_confirmation
from yolor_ray.train.spec import RUN_NAME, TrainSpec

ARM_SPEC = TrainSpec(config=Path("x.py"), cfg_options={"a": 1}, storage=StorageSpec("/elsewhere"))


def _results(ap: float | None, epoch_times=(1800.0, 1800.0)) -> RunResults:
    history = [{"epoch": i + 1, "epoch_time_s": t} for i, t in enumerate(epoch_times)]
    return RunResults(name="r", location="l", config="c.py", model="ATSS", history=history, world_size=2,
                      metrics={} if ap is None else {"coco/bbox_mAP": ap}, restarts=1)


def test_one_run_per_arm_and_seed_with_one_name_and_the_seeds_data_order():
    from yolor_ray.paired.plan import SAMPLER_SEED, Arm, run_name, run_spec

    assert run_name("atss-yolor", 0) == "atss-yolor-seed0"
    assert run_name("fpn+pred vector/lr=0.01", 2) == "fpn-pred_vector_lr_0.01-seed2"
    assert RUN_NAME.match(run_name("x" * 300, 12)) and len(run_name("x" * 300, 12)) == 107
    spec = run_spec(Arm("baseline", ARM_SPEC), 3, "/runs")
    assert (spec.name, spec.seed, spec.storage.uri) == ("baseline-seed3", 3, "/runs")
    assert spec.cfg_options == {"a": 1, SAMPLER_SEED: 3} and ARM_SPEC.cfg_options == {"a": 1}


def test_a_run_is_done_unfinished_or_new_by_its_folder(tmp_path, monkeypatch):
    """results.json: done; run.json of the same settings: unfinished (with a checkpoint or
    not); nothing: new; run.json of other settings: the name is taken."""
    from yolor_ray.paired import plan as planning

    fingerprint = lambda spec, inputs=None: f"fp-{spec.cfg_options.get('a')}"  # noqa: E731
    monkeypatch.setattr(planning, "fingerprint_of", fingerprint)
    monkeypatch.setattr(planning, "prepare_config",  # each arm's config, prepared once
                        lambda spec, known: SimpleNamespace(spec=spec, inputs=known, fingerprint=fingerprint(spec)))
    runs = tmp_path / "sweep" / "confirm"
    for name, files in {"baseline-seed0": ("run.json", "results.json"), "baseline-seed1": ("run.json",),
                        "v-seed0": ("run.json",)}.items():
        (runs / name).mkdir(parents=True)
        for file in files:
            (runs / name / file).write_text(RunManifest(config="x.py", fingerprint="fp-1").to_json())
    (runs / "v-seed0" / "checkpoint_000000").mkdir()
    (runs / "v-seed0" / "checkpoint_000000" / "checkpoint.pth").write_bytes(b"12345")
    (runs / "v-seed0" / "checkpoint_000000" / "run_state.json").write_text(
        RunState(history=[{"epoch": 1}], checkpoint_bytes=5).to_json())
    storage = open_storage(StorageSpec(str(tmp_path)))
    arms = [planning.Arm("baseline", ARM_SPEC), planning.Arm("v", ARM_SPEC)]
    plan = planning.plan_paired(arms, [0, 1], storage, "sweep", "confirm", in_actor=True, kind="confirmation")
    assert [(r.name, r.state, r.checkpointed) for r in plan.runs] == [
        ("baseline-seed0", "done", False), ("baseline-seed1", "unfinished", False),
        ("v-seed0", "unfinished", True), ("v-seed1", "new", False)]
    assert [r.name for r in plan.pending] == ["baseline-seed1", "v-seed0", "v-seed1"]
    assert plan.runs_uri == str(runs) and plan.seeds == (0, 1)
    other = [planning.Arm("baseline", TrainSpec(config=Path("x.py"), cfg_options={"a": 2}))]
    with pytest.raises(NameTakenError, match="baseline-seed0' was trained with other settings than this "
                                             "confirmation's; rerun with the options it started with"):
        planning.plan_paired(other, [0], storage, "sweep", "confirm", in_actor=True, kind="confirmation")


def test_outcomes_and_the_paired_maths():
    """Values per seed (None where a run has none), mean ± sd over those present, the interval
    over the seeds with both arms, and none below two such pairs."""
    from yolor_ray.paired.plan import PlannedRun
    from yolor_ray.paired.summary import arm_values, device_hours, outcome_of, paired_metric

    def outcome(arm, seed, ap, error=None):
        run = PlannedRun(arm, seed, ARM_SPEC, "new")
        return outcome_of(run, f"runs/{arm}-seed{seed}", _results(ap) if ap is not False else None, error, 4)

    base, ours = [0.30, 0.32, 0.31, 0.29], [0.33, 0.36, 0.32, 0.30]
    outcomes = [outcome("b", s, v) for s, v in enumerate(base)] + [outcome("v", s, v) for s, v in enumerate(ours)]
    paired = paired_metric(outcomes, "v", "b", [0, 1, 2, 3], "coco/bbox_mAP", scale=100)
    expected = paired_difference([100 * v for v in ours], [100 * v for v in base])
    assert paired.pairs == 4 and paired.diff_mean == pytest.approx(expected.mean)
    assert (paired.low, paired.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert paired.within_noise == expected.within_noise and paired.has_interval
    assert paired.baseline.mean == pytest.approx(30.5) and paired.variant.arm == "v"

    failed = outcome("v", 1, False, "RuntimeError: boom")
    unreported = outcome("v", 2, -1.0)  # COCO's 'not computed'
    assert (failed.status, failed.error, failed.metrics) == ("failed", "RuntimeError: boom", {})
    assert (outcome("v", 3, False).status, outcome("v", 3, False).error) == ("not run", "not run")
    some = outcomes[:4] + [outcome("v", 0, 0.33), failed, unreported]
    thin = paired_metric(some, "v", "b", [0, 1, 2, 3], "coco/bbox_mAP")
    assert thin.variant.values == [0.33, None, None, None] and thin.pairs == 1 and not thin.has_interval
    assert thin.variant.mean == 0.33 and thin.variant.sd == 0.0 and thin.within_noise is None
    assert arm_values(some, "nobody", [0], "coco/bbox_mAP") == ArmValues("nobody", [None])
    done = outcomes[0]
    # 2 workers x 4 CPUs x one hour of epochs
    assert done.device_hours == pytest.approx(8.0) == device_hours(_results(0.3), 4) and done.restarts == 1


def test_one_name_check_and_one_default_name(tmp_path):
    from yolor_ray.records import SweepManifest

    storage = open_storage(StorageSpec(str(tmp_path)))
    assert held_manifest(storage, "free", "sweep", SweepManifest, "sweep.json") is None
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "sweep.json").write_text(SweepManifest(config="c.py", fingerprint="f").to_json())
    assert held_manifest(storage, "ours", "sweep", SweepManifest, "sweep.json").fingerprint == "f"
    (tmp_path / "theirs").mkdir()
    with pytest.raises(NameTakenError, match=r"theirs' exists but is not a yolor-ray sweep \(no sweep.json\); "
                                             "pick another --name"):
        held_manifest(storage, "theirs", "sweep", SweepManifest, "sweep.json")
    assert issubclass(NameTakenError, FileExistsError)
    assert default_name("reproduce", datetime(2026, 1, 2, 3, 4, 5)) == "reproduce-20260102-030405"


def test_a_confirmation_reads_back_typed_and_an_earlier_ones_is_named(tmp_path):
    from yolor_ray.paired.plan import PlannedRun
    from yolor_ray.paired.summary import arm_values, outcome_of, paired_metric

    runs = [outcome_of(PlannedRun(arm, s, ARM_SPEC, "new"), f"confirm/{arm}-seed{s}", _results(ap), None, 1)
            for arm, aps in (("baseline", (0.3, 0.31)), ("v", (0.2, 0.22))) for s, ap in enumerate(aps)]
    runs.append(RunOutcome("w", 0, "confirm/w-seed0", "failed", "RuntimeError: boom"))
    confirmation = Confirmation(
        metric="coco/bbox_mAP", seeds=[0, 1], method="paired t",
        baseline=arm_values(runs, "baseline", [0, 1], "coco/bbox_mAP"),
        variants=[ConfirmedVariant("v", {"placements": ["pred"]},
                                   paired_metric(runs, "v", "baseline", [0, 1], "coco/bbox_mAP"))], runs=runs)
    again = Confirmation.from_json(confirmation.to_json())
    assert again == confirmation and isinstance(again.variants[0].paired.baseline, ArmValues)
    assert [run.arm for run in again.missing] == ["w"]
    board = Leaderboard(sweep="s", location="l", config="c.py", metric="coco/bbox_mAP", mode="max", search="grid",
                        epochs=2, confirmation=confirmation)
    assert Leaderboard.from_json(board.to_json()).confirmation == confirmation
    text = "\n".join(format_confirmation(confirmation))
    assert "| v | 0.3050 ± 0.0071 | 0.2100 ± 0.0141 | -0.0950" in text and "**beyond noise**" in text
    assert "- w, seed 0: RuntimeError: boom" in text

    # Schema 1 (untyped dicts): a RecordError that says so; inside a leaderboard, left out.
    earlier = dict(metric="m", seeds=[0, 1], method="x", baseline=dict(values=[1, 2], mean=1.5, sd=0.7, runs=[]),
                   variants=[dict(label="v", values=[1, 2])])
    with pytest.raises(RecordError, match=r"written by an earlier yolor-ray \(schema 0; this one reads schema 2"):
        Confirmation.from_dict(earlier)
    old_board = json.loads(board.to_json()) | {"confirmation": earlier}
    assert Leaderboard.from_dict(old_board).confirmation is None
    with pytest.raises(RecordError, match="written by an earlier yolor-ray"):
        Reproduction.from_dict(dict(name="n", location="l", method="m", device="GPU", seeds=[0], settings={},
                                    schema=1))
