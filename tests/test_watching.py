"""Our logic behind watching runs, without Ray: the epoch line, per-class AP, the config's
TensorBoard backend and classwise metric, pull from a local folder. Real runs: test_train_ray
(local), test_storage (S3), test_multinode (a failed run's logs), test_tune (a sweep)."""
import json

import pytest

from yolor_ray.metrics import format_per_class_table, per_class_ap
from yolor_ray.train.lines import epoch_line, format_duration

from support.paths import ATSS
from support.runs import yolor_ray


def test_epoch_line():
    record = {"epoch": 3, "train/loss": 1.23456, "coco/bbox_mAP": 0.1234, "restarts": 1}
    # resumed at epoch 3 (first seen): 60 s for one epoch, 9 to go
    assert epoch_line(record, 12, 60.0, first_epoch=3) == (
        "epoch 3/12  loss 1.2346  bbox_mAP 0.123  elapsed 1:00  ETA 9:00  restarts 1")
    assert epoch_line({"epoch": 1}, 2, 5.0, 1) == "epoch 1/2  loss -  bbox_mAP -  elapsed 0:05  ETA 0:05  restarts 0"
    assert format_duration(3725) == "1:02:05"


def test_per_class_ap_and_its_table():
    metrics = {"coco/circle_precision": 0.5, "coco/star_precision": float("nan"), "coco/bbox_mAP": 0.3}
    per_class = per_class_ap(metrics, ["circle", "square", "star"])
    assert per_class == {"circle": 0.5, "square": None, "star": None}
    assert format_per_class_table(per_class).splitlines() == [
        "| class | AP |", "| :-- | --: |", "| circle | 50.0 |", "| square | - |", "| star | - |"]


def test_every_config_gets_tensorboard_and_classwise_ap():
    from yolor_ray.config.edits import use_classwise_ap, use_tensorboard
    from yolor_ray.config.load import load_config

    cfg = load_config(ATSS)
    use_tensorboard(cfg)
    use_tensorboard(cfg)  # once only
    assert [b["type"] for b in cfg.visualizer.vis_backends] == ["LocalVisBackend", "TensorboardVisBackend"]
    use_classwise_ap(cfg)
    assert cfg.val_evaluator.classwise is True
    cfg.test_evaluator.classwise = False  # the config's own choice stays
    use_classwise_ap(cfg)
    assert cfg.test_evaluator.classwise is False


@pytest.fixture
def stored_run(tmp_path):
    run = tmp_path / "results" / "run-a"
    (run / "logs" / "20260101_000000" / "vis_data").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(dict(config="x.py", fingerprint="f")))
    (run / "logs" / "20260101_000000" / "vis_data" / "events.out.tfevents.1").write_bytes(b"\x00\x01")
    return run


@pytest.mark.subprocess
def test_pull_a_local_run(stored_run, tmp_path):
    proc = yolor_ray("pull", stored_run, tmp_path / "copy", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"pulled run {stored_run}: 2 files")
    assert (tmp_path / "copy" / "logs" / "20260101_000000" / "vis_data" / "events.out.tfevents.1").read_bytes() == \
        b"\x00\x01"
    assert json.loads((tmp_path / "copy" / "run.json").read_text())["config"] == "x.py"


@pytest.mark.subprocess
def test_pull_refuses_what_is_not_a_run(stored_run, tmp_path):
    (stored_run / "run.json").unlink()
    proc = yolor_ray("pull", stored_run, tmp_path / "copy", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"yolor-ray: error: no run or sweep at '{stored_run}': it has neither run.json "
                                   "nor sweep.json; name a run or sweep folder, e.g. s3://bucket/prefix/NAME")
    assert not (tmp_path / "copy").exists()
