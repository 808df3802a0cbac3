"""Which epochs carry a checkpoint (--checkpoint-interval, and the validation interval, since
Ray ranks checkpoints by their metrics): EpochReportHook in a real MMEngine Runner, 3 epochs
of a small ATSS, with a reporter that records what each report holds."""
from __future__ import annotations

from pathlib import Path

import pytest

from yolor_ray.engine.checkpoint import load_checkpoint_file
from yolor_ray.layout import CHECKPOINT_FILE, RUN_STATE_FILE
from yolor_ray.records import RunState
from yolor_ray.reference import yolor_config

from support.runs import worker_like_cfg

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingReporter:
    def __init__(self):
        self.reports: list[dict] = []

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        entry = dict(epoch=metrics["epoch"], validated="coco/bbox_mAP" in metrics, checkpoint=None)
        if checkpoint_dir is not None:  # the hook removes the folder after the report: read it now
            state = RunState.from_json((Path(checkpoint_dir) / RUN_STATE_FILE).read_text())
            saved = load_checkpoint_file(Path(checkpoint_dir) / CHECKPOINT_FILE)
            entry["checkpoint"] = dict(epoch=saved["meta"]["epoch"], history=[r["epoch"] for r in state.history])
        self.reports.append(entry)


# Three epochs each (about 9 s of CPU): the first case stays in the fast tier, the others are slow.
@pytest.mark.parametrize("checkpoint_interval, val_interval, validates, expected", [
    (2, 1, True, [2, 3]),  # every other epoch, and the last
    pytest.param(1, 2, True, [2, 3], marks=pytest.mark.slow),  # epoch 1 has no metrics to rank a checkpoint by
    pytest.param(2, 1, False, [2, 3], marks=pytest.mark.slow),  # no validation at all: by the interval alone
])
def test_checkpoints_follow_the_interval_and_the_last_epoch(checkpoint_interval, val_interval, validates, expected,
                                                            shapes_dir, tmp_path):
    from mmengine.runner import Runner

    from yolor_ray.engine.hooks import EpochReportHook
    from yolor_ray.engine.runner import TextOnceConfig
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.spec import TrainSpec

    cfg = worker_like_cfg(TrainSpec(config=yolor_config("atss"), data_root=shapes_dir, small=True, image_size=64,
                                    epochs=3, batch_size=8, storage=StorageSpec(str(tmp_path / "results"))),
                          tmp_path / "work")
    cfg.log_level = "WARNING"
    cfg.train_cfg.val_interval = val_interval
    if not validates:
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    runner = Runner.from_cfg(TextOnceConfig(cfg.to_dict()))
    reporter = RecordingReporter()
    runner.register_hook(EpochReportHook(reporter=reporter, checkpoint_interval=checkpoint_interval))
    runner.train()

    assert [r["epoch"] for r in reporter.reports] == [1, 2, 3]  # one report per epoch: Ray's barrier
    validated = [r["epoch"] for r in reporter.reports if r["validated"]]
    assert validated == ([e for e in (1, 2, 3) if e % val_interval == 0 or e == 3] if validates else [])
    checkpoints = {r["epoch"]: r["checkpoint"] for r in reporter.reports if r["checkpoint"] is not None}
    assert sorted(checkpoints) == expected
    for epoch, checkpoint in checkpoints.items():  # the weights of that epoch, and the whole run so far
        assert checkpoint == dict(epoch=epoch, history=list(range(1, epoch + 1)))
