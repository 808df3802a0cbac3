"""The package's shape: light commands without torch, records that read old files, one error base."""
import json
import subprocess
import sys
import textwrap

import pytest

from support.paths import REPO
from support.runs import yolor_ray

# A results.json as yolor-ray wrote it before records had a schema.
UNVERSIONED_RESULTS = dict(
    name="old-run", location="/somewhere/old-run", status="completed", config="configs/baseline/atss.py",
    model="ATSS", implicit=None, data_root="/data/shapes", classes=["circle"], small=True, epochs=2,
    metrics={"coco/bbox_mAP": 0.25, "coco/bbox_mAP_50": 0.5, "coco/bbox_mAP_75": 0.125},
    history=[{"epoch": 2, "iter": 8, "coco/bbox_mAP": 0.25}], restarts=0, num_params=1000, use_gpu=False,
    wall_time_s=12.0, checkpoint="/somewhere/old-run/checkpoint_000001", artifacts=["config.py"], versions={})


@pytest.mark.subprocess
def test_light_commands_import_neither_torch_nor_mmdet(tmp_path):
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "results.json").write_text(json.dumps(UNVERSIONED_RESULTS))
    script = textwrap.dedent(f"""
        import contextlib, io, sys
        import yolor_ray
        assert "mmdet" not in sys.modules and "torch" not in sys.modules, "import yolor_ray is not light"
        from yolor_ray.cli import main
        for argv in (["--help"], ["table", {str(tmp_path)!r}], ["cluster", "check", {str(REPO / "cluster.yaml")!r}]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                code = main(argv)
                assert code == 0, (argv, code)
            heavy = sorted(m for m in ("torch", "mmcv", "mmengine", "mmdet") if m in sys.modules)
            print(argv[0], heavy, len(out.getvalue()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [line.split(" [")[0] for line in lines] == ["--help", "table", "cluster"]
    assert all("[]" in line and not line.endswith(" 0") for line in lines), lines


@pytest.mark.subprocess
def test_table_reads_results_written_before_schemas(tmp_path):
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "results.json").write_text(json.dumps(UNVERSIONED_RESULTS))
    proc = yolor_ray("table", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| ATSS |  | 25.0 | 50.0 | 12.5 | shapes, small, 2 ep | old-run |" in proc.stdout


def test_records_round_trip_with_their_schema():
    from yolor_ray.records import Leaderboard, LeaderboardEntry, RunResults, RunState

    old = RunResults.from_dict(UNVERSIONED_RESULTS)
    assert old.world_size is None and old.nodes == [] and not old.is_yolor
    again = json.loads(old.to_json())
    assert again["schema"] == RunResults.SCHEMA and RunResults.from_dict(again) == old
    state = RunState.from_json(json.dumps(dict(history=[{"epoch": 1, "iter": 4, "train/loss": 2.0}], restarts=1)))
    assert state.epochs_run == 1 and state.final_metrics == {"train/loss": 2.0} and state.nodes == []
    board = Leaderboard(sweep="s", location="/s", config="c.py", metric="coco/bbox_mAP", mode="max", search="grid",
                        epochs=2, trials=[LeaderboardEntry(trial="t1", variant={"modeling": "mf"}, label="mf")])
    restored = Leaderboard.from_json(board.to_json())
    assert restored == board and isinstance(restored.trials[0], LeaderboardEntry)


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(capsys):
    from yolor_ray.cli.running import run_guarded
    from yolor_ray.config.load import ConfigError

    def user_mistake(_args):
        raise ConfigError("config file 'x.py' not found")

    def our_bug(_args):
        raise ValueError("an internal invariant broke")

    assert run_guarded(user_mistake, None) == 2
    assert capsys.readouterr().err == "yolor-ray: error: config file 'x.py' not found\n"
    with pytest.raises(ValueError, match="internal invariant"):
        run_guarded(our_bug, None)


def test_a_record_that_is_not_one_is_one_error_naming_what_is_wrong():
    from yolor_ray.records import RecordError, RunManifest, RunResults

    with pytest.raises(RecordError, match=r"^not JSON \(Expecting value: line 1 column 1 \(char 0\)\)$"):
        RunResults.from_json("")
    with pytest.raises(RecordError, match="^expected a JSON object, got list$"):
        RunResults.from_json("[1, 2]")
    # the required fields in the dataclass's order; fields with defaults may be absent (older writers)
    with pytest.raises(RecordError, match="^without name, location, config, history$"):
        RunResults.from_dict(dict(metrics={}, model="ATSS", status="completed"))
    assert issubclass(RecordError, ValueError)
    newer = RunManifest.from_dict(dict(config="c.py", fingerprint="f", written_by_a_newer_version=1))
    assert newer == RunManifest(config="c.py", fingerprint="f")


def test_table_skips_a_file_it_cannot_read_and_says_so(tmp_path, caplog):
    from yolor_ray.table import load_confirmations, load_records, load_reproductions

    files = (("old-run", "results.json", json.dumps(UNVERSIONED_RESULTS)),
             ("cut-short", "results.json", '{"name": "r", "met'),
             ("fields-missing", "results.json", json.dumps(dict(metrics={}, model="ATSS"))),
             ("sweep", "confirmation.json", json.dumps(dict(metric="coco/bbox_mAP"))),
             ("earlier-sweep", "confirmation.json", json.dumps(dict(  # schema 1: untyped dicts
                 schema=1, metric="coco/bbox_mAP", seeds=[0, 1], method="paired t", variants=[],
                 baseline=dict(values=[0.3, 0.31], mean=0.305, sd=0.007, runs=[])))),
             ("reproduction", "reproduce.json", "[]"))
    for folder, file, text in files:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / file).write_text(text)
    with caplog.at_level("WARNING", logger="yolor_ray"):
        assert [r.path for r in load_records(str(tmp_path))] == ["old-run"]
        assert load_confirmations(str(tmp_path)) == [] and load_reproductions(str(tmp_path)) == []
    assert "skipped cut-short/results.json: not a run's results: not JSON (Unterminated string" in caplog.text
    assert ("skipped fields-missing/results.json: not a run's results: without name, location, config, history"
            in caplog.text)
    assert ("skipped sweep/confirmation.json: not a sweep's confirmation: without seeds, method, baseline"
            in caplog.text)
    assert "skipped reproduction/reproduce.json: not a reproduction's results: expected a JSON object" in caplog.text
    assert ("skipped earlier-sweep/confirmation.json: not a sweep's confirmation: written by an earlier yolor-ray "
            "(schema 1; this one reads schema 2 and later)" in caplog.text)
