"""The AP in results.json is the AP of the checkpoint stored with it: with trainable BN and
2 workers, each rank's BN statistics differ after an epoch; they are averaged before
validation and the checkpoint, and the stored checkpoint re-evaluated in one process gives
the AP that results.json holds."""
from __future__ import annotations

import json

import pytest
from conftest import ATSS, config_with_user_hook, env_with_test_modules, logs_text, yolor_ray

EPOCHS = 10


@pytest.fixture(scope="module")
def bigger_shapes(tmp_path_factory):
    from yolor_ray.data import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("data") / "shapes96", ShapesSpec(num_train=96, num_val=16, seed=2,
                                                                                image_size=128))


def test_reported_ap_is_the_stored_checkpoints(bigger_shapes, mmdet_checkpoint, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from yolor_ray.engine.checkpoint import TRUSTED_PREFIX

    config = config_with_user_hook(tmp_path / "atss_probe.py", ATSS, "bn_probe_hook", "BNProbeHook")
    probes = tmp_path / "bn"
    probes.mkdir()
    env = env_with_test_modules(YOLOR_TEST_BN=str(probes))
    storage = tmp_path / "results"
    proc = yolor_ray("train", config, "--data", bigger_shapes, "--small", "--image-size", 128, "--epochs", EPOCHS,
                     "--batch-size", 4, "--num-workers", 2, "--storage", storage, "--name", "honest",
                     "--samples", 0, "--keep-checkpoints", 1,
                     # a warm start from mmdet's tools/train.py checkpoint of the same small ATSS
                     # and, from near scratch, 2x the LR, dropped once near the end (AP well above 0.05)
                     "--cfg-options", "optim_wrapper.optimizer.lr=0.02", "param_scheduler.1.milestones=[9]",
                     f"load_from={mmdet_checkpoint}", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = logs_text(storage / "honest")  # every rank's log, in the run's storage
    assert output.count("Load checkpoint from yolor-trusted://") >= 2  # through our loader, in both workers
    assert "missing keys in source state_dict" not in output and "unexpected key" not in output
    record = json.loads((storage / "honest" / "results.json").read_text())
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
    cfg = Config.fromfile(str(storage / "honest" / "config.py"))
    cfg.custom_hooks = []
    cfg.work_dir = str(tmp_path / "eval")
    cfg.load_from = TRUSTED_PREFIX + str(record["checkpoint"]) + "/checkpoint.pth"
    cfg.visualizer = dict(type="Visualizer", vis_backends=[])
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    metrics = Runner.from_cfg(cfg).test()
    assert metrics["coco/bbox_mAP"] == pytest.approx(reported, abs=1e-3)
