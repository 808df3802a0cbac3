"""Seconds per training and per validation iteration of each row's configs, measured on one
worker of the cluster (``--dry-run --calibrate N``): a Ray task that holds what one run's
worker holds (its GPU too) builds MMEngine's Runner of the run's config and times N
iterations of each after one to warm up: the data loader's next batch and the train step
(or the validation step, without gradients), as the train and validation loops do."""
from __future__ import annotations

import itertools
import logging
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import ray
from mmengine.config import Config

from yolor_ray.config.parts import validates
from yolor_ray.train.spec import TrainSpec

log = logging.getLogger("yolor_ray")


@dataclass(frozen=True)
class IterationTimes:
    """Median seconds of one training and of one validation iteration on one worker."""

    train_s: float
    val_s: float


def seconds_per_iteration(configs: dict[tuple[str, str], Config], train: TrainSpec,
                          iterations: int) -> dict[tuple[str, str], IterationTimes]:
    """(row, arm) -> the median seconds of ``iterations`` training and validation iterations
    on one worker, one config at a time (on an idle worker: runs side by side would slow
    each other)."""
    scaling = train.scaling
    task = ray.remote(_measure).options(num_cpus=scaling.cpus_per_worker, num_gpus=1 if scaling.use_gpu else 0,
                                        resources=dict(scaling.worker_resources) or None)
    measured = {}
    for key, cfg in configs.items():
        log.info("calibrating %s %s: %d training and %d validation iteration(s) on one %s worker", *key,
                 iterations, iterations, "GPU" if scaling.use_gpu else "CPU")
        measured[key] = ray.get(task.remote(cfg.to_dict(), iterations, scaling.use_gpu, scaling.cpus_per_worker))
    return measured


def _measure(cfg_dict: dict, iterations: int, use_gpu: bool, threads: int) -> IterationTimes:
    """In the Ray task: N + 1 training iterations of the config's model, data and optimizer,
    then N + 1 validation iterations of its model and validation data."""
    import torch

    from yolor_ray.engine.runner import WorkerRunner
    from yolor_ray.train.worker import runner_config  # registers our types in this process too

    if not use_gpu:
        torch.set_num_threads(threads)
    work_dir = tempfile.mkdtemp(prefix="yolor-ray-calibrate-")
    try:
        cfg = runner_config(cfg_dict, "calibrate", work_dir)
        cfg.launcher = "none"
        cfg.default_hooks.checkpoint = None
        runner = WorkerRunner.from_cfg(cfg)
        model = runner.model
        optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
        loader = runner.build_dataloader(cfg.train_dataloader, seed=cfg.randomness.get("seed"))
        synchronize = torch.cuda.synchronize if use_gpu else lambda: None
        model.train()
        train_s = _median_seconds(lambda batch: model.train_step(batch, optim_wrapper=optim_wrapper), loader,
                                  iterations, synchronize)
        if not validates(cfg):
            return IterationTimes(train_s, 0.0)  # a config that never validates
        model.eval()
        with torch.no_grad():  # as MMEngine's ValLoop runs it
            val_s = _median_seconds(model.val_step, runner.build_dataloader(cfg.val_dataloader), iterations,
                                    synchronize)
        return IterationTimes(train_s, val_s)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _median_seconds(step: Callable, loader, iterations: int, synchronize: Callable[[], None]) -> float:
    """The median of ``iterations`` calls of ``step`` on the loader's next batch, after one;
    ``synchronize`` waits for the device (CUDA runs asynchronously)."""
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # as many epochs as it takes
    times = []
    for _ in range(iterations + 1):
        start = time.perf_counter()
        step(next(batches))
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])
