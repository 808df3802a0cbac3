"""The train command end to end: a real local Ray, 2 gloo workers, a real small ATSS."""
import json
from pathlib import Path

from conftest import YOLOR_ATSS, config_with_user_hook, env_with_test_modules, yolor_ray


def test_two_worker_yolor_run_writes_results_and_fuses(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    # The YOLOR config plus a module of the user's own (custom_imports): every worker imports it.
    config = config_with_user_hook(tmp_path / "yolor_atss_with_hook.py", YOLOR_ATSS, "rank_marker_hook",
                                   "RankMarkerHook")
    markers = tmp_path / "markers"
    markers.mkdir()
    env = env_with_test_modules(YOLOR_TEST_MARKERS=str(markers))
    proc = yolor_ray("train", config, "--data", shapes_dir, "--small", "--image-size", 128, "--epochs", 2,
                     "--num-workers", 2, "--storage", storage, "--name", "atss-2w", "--samples", 2, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in markers.iterdir()) == ["rank0", "rank1"]
    run_dir = storage / "atss-2w"
    record = json.loads((run_dir / "results.json").read_text())
    assert record["world_size"] == 2
    assert record["model"] == "ATSS" and record["epochs"] == 2
    assert record["implicit"]["placements"] == ["fpn", "pred"]
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert 0.0 <= record["metrics"]["coco/bbox_mAP"] <= 1.0
    assert record["metrics"]["train/loss"] > 0
    assert record["num_params"] > 1e6
    assert set(record["versions"]) >= {"torch", "mmcv", "mmengine", "mmdet", "ray"}
    for name in ("curves.png", "samples.png", "config.py"):
        assert (run_dir / name).stat().st_size > 1000, name
    logs = [p.relative_to(run_dir / "logs") for p in (run_dir / "logs").rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in logs) and any(p.name == "scalars.json" for p in logs), logs
    assert Path(record["checkpoint"]).is_dir()
    assert record["restarts"] == 0
    # progress and the AP table reach the user
    assert "Epoch(train)" in proc.stdout + proc.stderr
    assert "| bbox |" in proc.stdout

    # The trained YOLOR checkpoint folds into its layers for deploy.
    fused = yolor_ray("fuse", record["checkpoint"], tmp_path / "deploy", env=env)
    assert fused.returncode == 0, fused.stdout[-2000:] + fused.stderr[-2000:]
    assert "kept 0" in fused.stdout and "folded 0" not in fused.stdout
    assert (tmp_path / "deploy" / "deploy.pth").stat().st_size > 1e6
    assert "YOLOR" not in (tmp_path / "deploy" / "deploy.py").read_text()
