"""Seconds per training iteration of each row's configs, measured on one worker of the
cluster (``--dry-run --calibrate N``): a Ray task that holds what one run's worker holds
(its GPU too) builds MMEngine's Runner of the run's config and times N iterations after one
to warm up: the data loader's next batch and the train step, as the train loop does."""
from __future__ import annotations

import itertools
import logging
import shutil
import statistics
import tempfile
import time

import ray
from mmengine.config import Config

from yolor_ray.train.spec import TrainSpec

log = logging.getLogger("yolor_ray")


def seconds_per_iteration(configs: dict[tuple[str, str], Config], train: TrainSpec,
                          iterations: int) -> dict[tuple[str, str], float]:
    """(row, arm) -> the median seconds of ``iterations`` training iterations on one worker,
    one config at a time (on an idle worker: runs side by side would slow each other)."""
    task = ray.remote(_measure).options(num_cpus=train.cpus_per_worker, num_gpus=1 if train.use_gpu else 0,
                                        resources=dict(train.worker_resources) or None)
    measured = {}
    for key, cfg in configs.items():
        log.info("calibrating %s %s: %d iteration(s) on one %s worker", *key, iterations,
                 "GPU" if train.use_gpu else "CPU")
        measured[key] = ray.get(task.remote(cfg.to_dict(), iterations, train.use_gpu, train.cpus_per_worker))
    return measured


def _measure(cfg_dict: dict, iterations: int, use_gpu: bool, threads: int) -> float:
    """In the Ray task: N + 1 iterations of the config's model, data and optimizer."""
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
        batches = itertools.chain.from_iterable(itertools.repeat(loader))  # as many epochs as it takes
        model.train()
        times = []
        for _ in range(iterations + 1):
            start = time.perf_counter()
            model.train_step(next(batches), optim_wrapper=optim_wrapper)
            if use_gpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
