"""The train command end to end: a real local Ray, 2 gloo workers, a real small ATSS."""
import json
import re
from pathlib import Path

import pytest

from support.paths import YOLOR_ATSS
from support.runs import assert_tensorboard_scalars, config_with_user_hook, env_with_test_modules, yolor_ray

pytestmark = [pytest.mark.ray, pytest.mark.subprocess]


def test_two_worker_yolor_run_writes_results_and_fuses(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    # The YOLOR config plus a module of the user's own (custom_imports): every worker imports it.
    config = config_with_user_hook(tmp_path / "yolor_atss_with_hook.py", YOLOR_ATSS, "support.rank_marker_hook",
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
    # The project's COCO metric: mmdet's rounded AP as before, and COCOeval's unrounded one beside it
    assert record["metrics"]["coco/bbox_mAP"] == round(record["metrics"]["coco/bbox_unrounded_mAP"], 3)
    assert all("coco/bbox_unrounded_mAP" in h for h in record["history"])
    assert record["metrics"]["train/loss"] > 0
    assert record["num_params"] > 1e6
    assert set(record["versions"]) >= {"torch", "mmcv", "mmengine", "mmdet", "ray"}
    for name in ("curves.png", "samples.png", "config.py"):
        assert (run_dir / name).stat().st_size > 1000, name
    logs = [p.relative_to(run_dir / "logs") for p in (run_dir / "logs").rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in logs) and any(p.name == "scalars.json" for p in logs), logs
    assert Path(record["checkpoint"]).is_dir()
    assert record["restarts"] == 0
    # The driver prints one line per epoch and the AP tables; the workers' raw output (MMEngine's
    # log, pycocotools' tables, warnings) goes to each rank's log folder in storage instead.
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"], proc.stdout
    assert all(re.search(r"loss \d+\.\d+  bbox_mAP \d\.\d{3}  elapsed \d+:\d\d  ETA \d+:\d\d  restarts 0$", line)
               for line in epoch_lines), epoch_lines
    driver = proc.stdout + proc.stderr
    for raw in ("Epoch(train)", "Epoch(val)", "Evaluating bbox", "UserWarning", "TrainingReport"):
        assert raw not in driver, raw
    assert "| bbox |" in proc.stdout
    assert "| class | AP |" in proc.stdout
    assert set(record["per_class_ap"]) == set(record["classes"])
    assert all(ap is None or 0.0 <= ap <= 1.0 for ap in record["per_class_ap"].values())
    rank0_log = next(p for p in (run_dir / "logs").glob("*/*.log") if p.name != "output.log")
    assert "Epoch(train)" in rank0_log.read_text() and "Epoch(val) [2]" in rank0_log.read_text()
    assert "Evaluating bbox" in next((run_dir / "logs").glob("*/output.log")).read_text()
    assert list((run_dir / "logs").glob("rank1/*/*_rank1.log")) and list((run_dir / "logs").glob("rank1/*/output.log"))
    assert (run_dir / "logs" / "driver_warnings.log").read_text().strip()
    assert_tensorboard_scalars(run_dir, epochs=2)

    # The trained YOLOR checkpoint folds into its layers for deploy.
    fused = yolor_ray("fuse", record["checkpoint"], tmp_path / "deploy", env=env)
    assert fused.returncode == 0, fused.stdout[-2000:] + fused.stderr[-2000:]
    assert "kept 0" in fused.stdout and "folded 0" not in fused.stdout
    assert (tmp_path / "deploy" / "deploy.pth").stat().st_size > 1e6
    assert "YOLOR" not in (tmp_path / "deploy" / "deploy.py").read_text()
