"""A bench-only MMEngine hook: the wall-clock time after every training iteration, and
the CPU time every process on the machine spent while training ran (the profile that
says what else competes for the cores).

Configs under bench/configs load it (``custom_imports``); it writes rank 0's stamps,
grouped by epoch, and the CPU profile to the file named by ``$YOLOR_BENCH_ITER_TIMES``
when training ends. The same hook runs in a plain MMEngine Runner and inside a Ray Train
worker, so both are timed by the same code (Ray's local workers inherit the variable
from the driver). With ``$YOLOR_BENCH_TRAIN_CPUS`` it first moves the training thread
onto those cores (``bench.ray_overhead``: a core of its own, Ray's processes on the other).
"""
from __future__ import annotations

import json
import os
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from bench.common import ITER_TIMES_ENV, TRAIN_CPUS_ENV
from bench.cpu_profile import by_name, cpu_seconds

IMPORTED = time.perf_counter()  # in a Ray worker: its imports are done (the config's custom_imports)


def process_started() -> float:
    """When this process started, on the clock of ``time.perf_counter`` (the system-wide
    monotonic one): /proc's start time counts clock ticks since boot."""
    with open("/proc/self/stat") as f:
        started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.perf_counter() - (since_boot - started_ticks / os.sysconf("SC_CLK_TCK"))


@HOOKS.register_module()
class BenchIterTimes(Hook):
    priority = "VERY_LOW"  # after the optimizer step and every other hook of the iteration

    def __init__(self):
        # Start-up phases of the process that trains (bench.startup_stamps has the driver's).
        self.stamps = {"process started": process_started(), "hook module imported": IMPORTED,
                       "runner's hooks built": time.perf_counter()}
        self.epochs: list[list[float]] = []
        self._cpu_start: tuple[float, dict] | None = None
        self.cpu: dict | None = None

    def before_run(self, runner):
        self.stamps["before_run"] = time.perf_counter()

    def before_train(self, runner):
        self.stamps["before_train"] = time.perf_counter()
        cpus = os.environ.get(TRAIN_CPUS_ENV)
        if cpus:  # this thread (the one that trains) to its own cores; the process's other threads stay
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})

    def before_train_epoch(self, runner):
        self.epochs.append([time.perf_counter()])
        if self._cpu_start is None:
            self._cpu_start = (time.perf_counter(), cpu_seconds())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.epochs[-1].append(time.perf_counter())

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == runner.train_loop.max_epochs:  # the training iterations are over; validation is not
            start_t, start = self._cpu_start
            wall = time.perf_counter() - start_t
            self.cpu = dict(wall_s=wall, cpu_s=by_name(start, cpu_seconds(), "this training process"))

    def after_train(self, runner):
        path = os.environ.get(ITER_TIMES_ENV)
        if path and get_rank() == 0:
            with open(path, "w") as f:
                json.dump(dict(epochs=self.epochs, world_size=runner.world_size, cpu=self.cpu, stamps=self.stamps), f)
