"""MMEngine hooks of a worker: report each epoch (to Ray Train or Tune), copy the logs to storage."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook

from yolor_ray.config.edits import TENSORBOARD_BACKEND
from yolor_ray.config.load import ConfigError
from yolor_ray.config.parts import coco_tasks
from yolor_ray.engine.run_logs import upload_logs
from yolor_ray.errors import require_int
from yolor_ray.layout import CHECKPOINT_FILE, RUN_STATE_FILE, WORKER_OUTPUT
from yolor_ray.metrics import RESTARTS, coco_keys, unrounded_coco_keys
from yolor_ray.records import EPOCH_TIME, RunState
from yolor_ray.storage import StorageSpec


class Reporter(Protocol):
    """Where a worker's epochs go: Ray Train's ``report`` in a TorchTrainer's workers
    (``yolor_ray.train.worker``), Tune's in a run in its Tune actor (``yolor_ray.paired.trial``).
    ``checkpoint_dir``: a local folder to persist with the report (then deleted by the caller)."""

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None: ...


class EpochReportHook(Hook):
    """Reports each epoch's metrics and a checkpoint to a :class:`Reporter`.

    Ray Train's report is a barrier: every rank calls it once per epoch, after
    validation when the epoch validates, else after training. Rank 0 attaches a
    checkpoint directory holding the MMEngine checkpoint and the run state so far
    (metric history, restarts), so the latest checkpoint in storage describes the
    whole run and a resumed run carries it on.
    """

    priority = "LOWEST"  # after every other hook of the epoch has logged and saved

    def __init__(self, reporter: Reporter, checkpoint_interval: int = 1, history: list | None = None,
                 restarts: int = 0, topology: list | None = None, validate_first: bool = False,
                 before_training: dict | None = None):
        require_int("EpochReportHook(checkpoint_interval)", checkpoint_interval, 1, ConfigError)
        self.reporter = reporter
        self.checkpoint_interval = checkpoint_interval
        self.history: list[dict] = list(history or [])
        self.restarts = restarts
        self.topology = list(topology or [])  # every rank's node, as the ranks observed it
        # A warm start validates once before its first epoch: the metrics it starts from.
        self.validate_first = validate_first
        self.before_training = dict(before_training or {})
        self._loss_sums: dict[str, float] = defaultdict(float)
        self._loss_count = 0
        self._train_record: dict | None = None
        self._checkpoint_due = False
        self._epoch_start = 0.0

    def before_train(self, runner) -> None:
        if not self.validate_first or self.history or self.before_training or runner.val_loop is None:
            return  # resumed: its start was measured before the restart
        metrics = _with_empty_coco_as_zero(runner, dict(runner.val_loop.run() or {}))  # every rank: a collective
        self.before_training = {k: _plain(v) for k, v in metrics.items()}

    def before_train_epoch(self, runner) -> None:
        self._epoch_start = time.monotonic()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for key, value in (outputs or {}).items():
            if key.startswith("loss"):
                self._loss_sums[key] += float(value.detach() if hasattr(value, "detach") else value)
        self._loss_count += 1

    def after_train_epoch(self, runner):
        # The loop counts this epoch only after this hook: MMEngine's interval helpers
        # (runner.epoch + 1) are right here and one off in after_val_epoch.
        self._train_record = {"epoch": runner.epoch + 1, "iter": runner.iter}
        self._train_record.update(self._mean_losses())
        self._loss_sums.clear()
        self._loss_count = 0
        last = self.is_last_train_epoch(runner)
        # Ray ranks checkpoints by validation mAP, so in a validating run only epochs
        # with metrics carry one (the last epoch always validates).
        self._checkpoint_due = last or self.every_n_epochs(runner, self.checkpoint_interval)
        if not self._validates_after(runner):
            self._report(runner, {})

    def _mean_losses(self) -> dict:
        """Each loss's mean over this epoch's iterations of every rank (a collective: all ranks
        call it after each training epoch), not rank 0's alone."""
        keys = sorted(self._loss_sums)
        totals = torch.tensor([self._loss_sums[k] for k in keys] + [float(self._loss_count)], dtype=torch.float64)
        if is_distributed():
            all_reduce(totals, op="sum")
        count = max(totals[-1].item(), 1.0)
        return {f"train/{k}": v / count for k, v in zip(keys, totals[:-1].tolist())}

    def after_val_epoch(self, runner, metrics=None):
        if self._train_record is None:  # a val run outside training (runner.val())
            return
        self._report(runner, _with_empty_coco_as_zero(runner, dict(metrics or {})))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # The message hub's smoothing buffers pickle their statistic methods through
        # ``getattr``; our loader maps that, but resuming does not need them: keep files small.
        message_hub = checkpoint.get("message_hub")
        if isinstance(message_hub, dict):
            message_hub["log_scalars"] = {}

    def _validates_after(self, runner) -> bool:
        """EpochBasedTrainLoop's own rule for validating after this epoch."""
        loop = runner.train_loop
        if runner.val_loop is None:
            return False
        return runner.epoch + 1 >= getattr(loop, "val_begin", 1) and (
            self.every_n_epochs(runner, getattr(loop, "val_interval", 1)) or self.is_last_train_epoch(runner))

    def _report(self, runner, metrics: dict) -> None:
        record = dict(self._train_record)
        record.update({k: _plain(v) for k, v in metrics.items()})
        record[EPOCH_TIME] = round(time.monotonic() - self._epoch_start, 3)
        self._train_record = None
        self.history.append(record)
        with_checkpoint = self._checkpoint_due and (bool(metrics) or runner.val_loop is None)
        reported = {**record, RESTARTS: self.restarts}  # for the driver's progress line, not the history
        if runner.rank != 0 or not with_checkpoint:
            self.reporter.report(reported)
            return
        staging = tempfile.mkdtemp(prefix="yolor-ray-ckpt-")
        try:
            # Explicit meta: MMEngine assumes a call from after_train_epoch and would
            # count one epoch too many when called after validation.
            runner.save_checkpoint(staging, filename=CHECKPOINT_FILE, save_optimizer=True, save_param_scheduler=True,
                                   meta=dict(epoch=record["epoch"], iter=runner.iter))
            state = RunState(history=self.history, restarts=self.restarts, nodes=self.topology,
                             before_training=self.before_training,
                             checkpoint_bytes=os.path.getsize(os.path.join(staging, CHECKPOINT_FILE)))
            with open(os.path.join(staging, RUN_STATE_FILE), "w") as f:
                f.write(state.to_json())
            self.reporter.report(reported, checkpoint_dir=staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class StorageLogHook(Hook):
    """Rank 0 copies its MMEngine log folder (text log, scalars, TensorBoard events) and the
    worker's output into the run's storage after every epoch, so TensorBoard follows a run
    as it trains and a crash or a lost node leaves the logs so far."""

    priority = "VERY_LOW"  # after the logger hook has written the epoch's lines

    def __init__(self, storage: dict, run_name: str):
        self.storage = StorageSpec(**storage)
        self.run_name = run_name

    def after_train_epoch(self, runner) -> None:
        self._upload(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._upload(runner)

    def _upload(self, runner) -> None:
        if runner.rank != 0:
            return
        tensorboard = runner.visualizer.get_backend(TENSORBOARD_BACKEND)
        if tensorboard is not None:
            tensorboard.experiment.flush()  # its writer flushes every 2 minutes on its own
        upload_logs(runner.log_dir, self.storage, self.run_name, rank=0,
                    output_file=Path(runner.work_dir) / WORKER_OUTPUT)


def _with_empty_coco_as_zero(runner, metrics: dict) -> dict:
    """CocoMetric returns no keys at all when no box passes the score threshold (an
    untrained model); the AP of an empty detection set is 0, so report that."""
    for task in coco_tasks(runner.cfg):
        if f"coco/{task}_mAP" not in metrics:
            runner.logger.warning(f"no {task} detection passed the score threshold; reporting COCO {task} AP as 0")
            zeros = dict.fromkeys([*coco_keys(task), *unrounded_coco_keys(task)], 0.0)
            metrics.update(zeros)
            # The logger hook had nothing to log: TensorBoard gets the same zeros (its step: the epoch).
            runner.visualizer.add_scalars(zeros, step=runner.epoch)
    return metrics


def _plain(value):
    """Metrics as JSON-friendly Python numbers (tensors and numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value
