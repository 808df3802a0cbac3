"""The AP in results.json is the AP of the checkpoint stored with it: with trainable BN and
2 workers, each rank's BN statistics differ after an epoch; they are averaged before
validation and the checkpoint, and the stored checkpoint re-evaluated in one process gives
the AP that results.json holds."""
from __future__ import annotations

import json

import pytest

from support.runs import HONEST_EPOCHS as EPOCHS

pytestmark = [pytest.mark.ray, pytest.mark.subprocess]


def test_reported_ap_is_the_stored_checkpoints(trained_baseline, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from yolor_ray.engine.checkpoint import TRUSTED_PREFIX

    run, probes, output = trained_baseline["run"], trained_baseline["probes"], trained_baseline["output"]
    assert output.count("Load checkpoint from yolor-trusted://") >= 2  # through our loader, in both workers
    assert "missing keys in source state_dict" not in output and "unexpected key" not in output
    record = json.loads((run / "results.json").read_text())
    reported = record["metrics"]["coco/bbox_mAP"]
    assert reported > 0.05, [(h["epoch"], h.get("coco/bbox_mAP"), round(h["train/loss"], 3)) for h in record["history"]]

    def stats(when, epoch, rank):
        return json.loads((probes / f"{when}-epoch{epoch}-rank{rank}.json").read_text())

    last = EPOCHS - 1  # runner.epoch during the last epoch's hooks
    # the ranks trained on different halves: their BN statistics differ before the sync ...
    assert stats("trained", last, 0) != stats("trained", last, 1)
    # ... and are one model's when validation runs
    assert stats("val", EPOCHS, 0) == pytest.approx(stats("val", EPOCHS, 1), rel=1e-6)

    # the stored checkpoint, evaluated by MMEngine in one process, gives the reported AP
    cfg = Config.fromfile(str(run / "config.py"))
    cfg.custom_hooks = []
    cfg.work_dir = str(tmp_path / "eval")
    cfg.load_from = TRUSTED_PREFIX + str(record["checkpoint"]) + "/checkpoint.pth"
    cfg.visualizer = dict(type="Visualizer", vis_backends=[])
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    metrics = Runner.from_cfg(cfg).test()
    assert metrics["coco/bbox_mAP"] == pytest.approx(reported, abs=1e-3)
