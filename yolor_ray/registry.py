"""Everything yolor-ray registers into MMEngine's registries, in one place.

Importing ``yolor_ray`` imports this module, so a config with
``custom_imports = dict(imports=['yolor_ray'])`` can name these types, and so can
MMEngine's own Runner outside Ray.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from contextlib import contextmanager

import torch
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import HOOKS, MODEL_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from mmengine.runner import CheckpointLoader

from yolor_ray.checkpoint import TRUSTED_PREFIX, load_checkpoint_file
from yolor_ray.results import AP_KEYS
from yolor_ray.run_logs import upload_logs
from yolor_ray.storage import StorageSpec

CHECKPOINT_FILE = "checkpoint.pth"
RUN_STATE_FILE = "run_state.json"  # per-epoch metrics so far and restarts, beside each checkpoint


@CheckpointLoader.register_scheme(prefixes=TRUSTED_PREFIX)
def load_trusted_checkpoint(filename: str, map_location=None):
    """MMEngine loads ``yolor-trusted://PATH`` (ours on resume, a user's ``load_from``)
    with ``weights_only=True`` and our allow-list (checkpoint.py) instead of its bare ``torch.load``."""
    return load_checkpoint_file(filename[len(TRUSTED_PREFIX):], map_location=map_location)


@MODEL_WRAPPERS.register_module()
class CPUFriendlyDDP(MMDistributedDataParallel):
    """MMEngine's DDP wrapper that also works for CPU modules.

    MMEngine passes ``device_ids=[LOCAL_RANK]``, which torch's DDP rejects for a
    module on the CPU (gloo workers under Ray Train); CPU DDP wants ``None``.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        on_cpu = next(module.parameters()).device.type == "cpu"
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class YOLOROptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor plus YOLOR's recipe: implicit tensors get no weight
    decay (decay pulls an ImplicitM's z toward 0, not its init 1), unless the model's
    ``implicit.weight_decay`` is True. Every other rule of ``paramwise_cfg`` applies as usual."""

    def __call__(self, model):
        from yolor_ray.implicit import is_implicit_key

        inner = model.module if hasattr(model, "module") else model
        spec = getattr(inner, "implicit_spec", None)
        self._no_decay = set() if spec is None or spec.weight_decay else {
            id(p) for name, p in inner.named_parameters() if is_implicit_key(name)}
        if self._no_decay and not self.paramwise_cfg:
            self.paramwise_cfg = dict(custom_keys={})  # per-parameter groups, all else as without it
        return super().__call__(model)

    def add_params(self, params, module, prefix="", is_dcn_module=None):
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix == "":  # the outermost call: every group is in
            for group in params:
                if any(id(p) in self._no_decay for p in group["params"]):
                    group["weight_decay"] = 0.0


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """bf16 autocast around the forward pass, on GPU or CPU. MMEngine's AmpOptimWrapper
    asserts a GPU; bf16 has fp32's exponent range, so no loss scaling is needed."""

    skipped_steps = 0

    @contextmanager
    def optim_context(self, model):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device, dtype=torch.bfloat16):
            yield

    def step(self, **kwargs) -> None:
        # As AMP's grad scaler does for fp16: a step whose gradients are not finite is
        # skipped (seen with CPU bf16 convs on 1x1 feature maps), not applied as NaN weights.
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads and not torch.isfinite(torch.stack([g.detach().float().abs().max() for g in grads])).all():
            self.skipped_steps += 1
            print_log(f"bf16: gradients not finite, step skipped ({self.skipped_steps} so far)", logger="current",
                      level=logging.WARNING)
            self.optimizer.zero_grad()
            return
        super().step(**kwargs)


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that gives None for an image it cannot read, so a training
    dataset draws another (MMEngine's BaseDataset refetches); each skip is logged with
    the count so far in this data-loading process."""

    skipped = 0

    def transform(self, results):
        try:
            return super().transform(results)
        except Exception as err:  # unreadable, truncated, or not an image
            LoadImageOrSkip.skipped += 1
            print_log(f"skipped unreadable image {results.get('img_path')!r} ({type(err).__name__}: {err}); "
                      f"{LoadImageOrSkip.skipped} skipped so far in this process", logger="current",
                      level=logging.WARNING)
            return None


@HOOKS.register_module()
class RayTrainReportHook(Hook):
    """Reports each epoch's metrics and a checkpoint to Ray Train.

    ``ray.train.report`` is a barrier: every rank calls it once per epoch, after
    validation when the epoch validates, else after training. Rank 0 attaches a
    checkpoint directory holding the MMEngine checkpoint and the run state so far
    (metric history, restarts), so the latest checkpoint in storage describes the
    whole run and a resumed run carries it on.
    """

    priority = "LOWEST"  # after every other hook of the epoch has logged and saved

    def __init__(self, checkpoint_interval: int = 1, history: list | None = None, restarts: int = 0,
                 topology: list | None = None):
        if not isinstance(checkpoint_interval, int) or checkpoint_interval < 1:
            raise ValueError(f"RayTrainReportHook(checkpoint_interval) must be an int >= 1, got {checkpoint_interval!r}")
        self.checkpoint_interval = checkpoint_interval
        self.history: list[dict] = list(history or [])
        self.restarts = restarts
        self.topology = list(topology or [])  # every rank's node, as the ranks observed it
        self._loss_sums: dict[str, float] = defaultdict(float)
        self._loss_count = 0
        self._train_record: dict | None = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for key, value in (outputs or {}).items():
            if key.startswith("loss"):
                self._loss_sums[key] += float(value.detach() if hasattr(value, "detach") else value)
        self._loss_count += 1

    def after_train_epoch(self, runner):
        epoch = runner.epoch + 1  # the loop increments after this hook
        self._train_record = {"epoch": epoch, "iter": runner.iter}
        self._train_record.update(self._mean_losses())
        self._loss_sums.clear()
        self._loss_count = 0
        if not self._validates_after(runner, epoch):
            self._report(runner, {})

    def _mean_losses(self) -> dict:
        """Each loss's mean over this epoch's iterations of every rank (a collective: all ranks
        call it after each training epoch), not rank 0's alone."""
        from mmengine.dist import all_reduce, is_distributed

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

    @staticmethod
    def _validates_after(runner, epoch: int) -> bool:
        loop = runner.train_loop
        if runner.val_loop is None:
            return False
        interval = getattr(loop, "val_interval", 1)
        return epoch >= getattr(loop, "val_begin", 1) and (epoch % interval == 0 or epoch == loop.max_epochs)

    def _report(self, runner, metrics: dict) -> None:
        import ray.train

        record = dict(self._train_record)
        record.update({k: _plain(v) for k, v in metrics.items()})
        self._train_record = None
        self.history.append(record)
        last_epoch = record["epoch"] == runner.train_loop.max_epochs
        # Ray ranks checkpoints by validation mAP, so in a validating run only epochs
        # with metrics carry one (the last epoch always validates).
        on_interval = record["epoch"] % self.checkpoint_interval == 0
        with_checkpoint = last_epoch or (on_interval and (bool(metrics) or runner.val_loop is None))
        if runner.rank != 0 or not with_checkpoint:
            ray.train.report(record)
            return
        staging = tempfile.mkdtemp(prefix="yolor-ray-ckpt-")
        try:
            # Explicit meta: MMEngine assumes a call from after_train_epoch and would
            # count one epoch too many when called after validation.
            runner.save_checkpoint(staging, filename=CHECKPOINT_FILE, save_optimizer=True, save_param_scheduler=True,
                                   meta=dict(epoch=record["epoch"], iter=runner.iter))
            with open(os.path.join(staging, RUN_STATE_FILE), "w") as f:
                json.dump(dict(history=self.history, restarts=self.restarts, nodes=self.topology), f, indent=1)
            ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(staging))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@HOOKS.register_module()
class StorageLogHook(Hook):
    """Rank 0 copies its MMEngine log folder (text log, scalars) into the run's storage
    after every epoch, so a crash or a lost node leaves the logs so far."""

    priority = "VERY_LOW"  # after the logger hook has written the epoch's lines

    def __init__(self, storage: dict, run_name: str):
        self.storage = StorageSpec(**storage)
        self.run_name = run_name

    def after_train_epoch(self, runner) -> None:
        self._upload(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._upload(runner)

    def _upload(self, runner) -> None:
        if runner.rank == 0:
            upload_logs(runner.log_dir, self.storage, self.run_name, rank=0)


def _with_empty_coco_as_zero(runner, metrics: dict) -> dict:
    """CocoMetric returns no keys at all when no box passes the score threshold (an
    untrained model); the AP of an empty detection set is 0, so report that."""
    evaluator = runner.cfg.get("val_evaluator") or {}
    if isinstance(evaluator, dict) and evaluator.get("type") == "CocoMetric":
        tasks = evaluator.get("metric", "bbox")
        for task in [tasks] if isinstance(tasks, str) else tasks:
            if f"coco/{task}_mAP" not in metrics:
                runner.logger.warning(f"no {task} detection passed the score threshold; reporting COCO {task} AP as 0")
                metrics.update({f"coco/{task}_{suffix}": 0.0 for suffix in AP_KEYS})
    return metrics


def _plain(value):
    """Metrics as JSON-friendly Python numbers (tensors and numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value

