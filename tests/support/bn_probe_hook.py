"""Records each rank's BN statistics into ``$YOLOR_TEST_BN``: at the end of each training
epoch before MMEngine's SyncBuffersHook (priority NORMAL) runs, and before validation."""
import json
import os
from pathlib import Path

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn


def _bn_stats(model) -> list[float]:
    return [float(m.running_mean.sum() + m.running_var.sum()) for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]


@HOOKS.register_module()
class BNProbeHook(Hook):
    priority = "ABOVE_NORMAL"

    def _write(self, runner, when: str) -> None:
        path = Path(os.environ["YOLOR_TEST_BN"], f"{when}-epoch{runner.epoch}-rank{runner.rank}.json")
        path.write_text(json.dumps(_bn_stats(runner.model)))

    def after_train_epoch(self, runner):
        self._write(runner, "trained")

    def before_val_epoch(self, runner):
        self._write(runner, "val")
