"""What a reproduction will cost, before cluster time: training and validation iterations per
run from the config and the data, seconds per iteration measured (``calibrate``: both) or given
(training's), device-hours and wall time at the runs that fit side by side. Every assumption
is printed with the figures."""
from __future__ import annotations

import functools
import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

from yolor_ray.config.parts import innermost_dataset, validates
from yolor_ray.data.coco import CocoFolder
from yolor_ray.reproduce.plan import ReproducePlan
from yolor_ray.units import HOUR, device_time_text, duration_text


@dataclass(frozen=True)
class ArmCost:
    """One row's arm: what each of its runs costs."""

    row: str
    arm: str
    iterations: int  # per run: epochs x iterations per epoch
    seconds_per_iter: float | None
    source: str  # where seconds_per_iter comes from
    runs_to_train: int
    val_iterations: int = 0  # per run and worker: validations x the worker's share of the val images
    val_seconds_per_iter: float | None = None  # None: validation not counted

    @property
    def hours_per_run(self) -> float | None:
        """Wall hours of one run's training iterations, and its validation ones where measured."""
        if self.seconds_per_iter is None:
            return None
        val_s = self.val_iterations * self.val_seconds_per_iter if self.val_seconds_per_iter is not None else 0.0
        return (self.iterations * self.seconds_per_iter + val_s) / 3600


@dataclass(frozen=True)
class Estimate:
    arms: tuple[ArmCost, ...]
    devices_per_run: int  # GPUs (CPUs without --gpu) one run holds
    device: str
    concurrency: int
    concurrency_source: str
    assumptions: tuple[str, ...]

    @property
    def device_hours(self) -> float | None:
        if any(a.hours_per_run is None for a in self.arms if a.runs_to_train):
            return None
        return sum(a.hours_per_run * a.runs_to_train for a in self.arms if a.runs_to_train) * self.devices_per_run

    @property
    def wall_hours(self) -> float | None:
        """The pending runs scheduled longest first onto ``concurrency`` slots: when the last ends."""
        if self.device_hours is None:
            return None
        slots = [0.0] * self.concurrency
        for hours in sorted((a.hours_per_run for a in self.arms for _ in range(a.runs_to_train)), reverse=True):
            heapq.heapreplace(slots, slots[0] + hours)
        return max(slots)


def train_images(cfg: Config, data: CocoFolder | None) -> int:
    """Images an epoch trains on: the --data folder's, else those of the config's annotation
    file that mmdet keeps (with ``filter_empty_gt``, only images with an annotation)."""
    if data is not None:
        return data.train.num_images
    dataset = innermost_dataset(cfg.train_dataloader)
    ann_file = (Path(dataset.get("data_root") or "") / dataset["ann_file"]).resolve()
    return _images_in(str(ann_file), bool((dataset.get("filter_cfg") or {}).get("filter_empty_gt")))


@functools.lru_cache(maxsize=None)
def _images_in(ann_file: str, with_annotations_only: bool) -> int:
    """Images of a COCO annotation file (read once for every row that trains on it)."""
    coco = json.loads(Path(ann_file).read_bytes(), parse_float=lambda _: 0.0)  # its floats are not needed
    if with_annotations_only:
        return len({a["image_id"] for a in coco.get("annotations", []) if not a.get("iscrowd")})
    return len(coco["images"])


def val_images(cfg: Config, data: CocoFolder | None) -> int:
    """Images a validation runs on: the --data folder's, else every image of the config's
    validation annotation file (mmdet filters nothing in test mode)."""
    if data is not None:
        return data.val.num_images
    dataset = innermost_dataset(cfg.val_dataloader)
    return _images_in(str((Path(dataset.get("data_root") or "") / dataset["ann_file"]).resolve()), False)


def iterations_per_run(cfg: Config, images: int, num_workers: int) -> int:
    total_batch = cfg.train_dataloader.batch_size * num_workers
    return cfg.train_cfg.max_epochs * math.ceil(images / total_batch)


def validations_per_run(cfg: Config) -> int:
    """As MMEngine's EpochBasedTrainLoop validates: from ``val_begin``, every ``val_interval``
    epochs and after the last."""
    if not validates(cfg):
        return 0
    epochs, begin, interval = (cfg.train_cfg.max_epochs, cfg.train_cfg.get("val_begin", 1),
                               cfg.train_cfg.get("val_interval", 1))
    return sum(1 for epoch in range(1, epochs + 1) if epoch >= begin and (epoch % interval == 0 or epoch == epochs))


def val_iterations_per_run(cfg: Config, images: int, num_workers: int) -> int:
    """Per worker: each validates its share of the images (MMEngine's DefaultSampler)."""
    return validations_per_run(cfg) * math.ceil(images / (cfg.val_dataloader.batch_size * num_workers))


def estimate(plan: ReproducePlan, seconds: dict[tuple[str, str], tuple[float, float | None, str]], concurrency: int,
             concurrency_source: str) -> Estimate:
    """``seconds``: (row, arm) -> (seconds per training iteration, per validation iteration
    (None: not known, validation not counted), where the figures come from)."""
    scaling = plan.spec.train.scaling
    pending = [plan.arms[run.arm] for run in plan.pending]
    arms = []
    for (row, arm), cfg in plan.configs.items():
        per_iter, per_val_iter, source = seconds.get((row, arm), (None, None, "not measured"))
        arms.append(ArmCost(row, arm, iterations_per_run(cfg, train_images(cfg, plan.data), scaling.num_workers),
                            per_iter, source, pending.count((row, arm)),
                            val_iterations_per_run(cfg, val_images(cfg, plan.data), scaling.num_workers), per_val_iter))
    devices = scaling.num_workers * (1 if scaling.use_gpu else scaling.cpus_per_worker)
    validation = (
        "validation counted at its measured seconds per iteration (each worker its share of the val images); "
        "the COCO evaluation after it, start-up and checkpoint uploads are not counted (they add to both arms)"
        if all(a.val_seconds_per_iter is not None for a in arms) else
        "validation (given figures are training's: --calibrate measures both), the COCO evaluation, start-up and "
        "checkpoint uploads are not counted (they add to both arms)")
    assumptions = (
        "an iteration of W workers takes what one worker's took (DDP at the same batch per worker; "
        "its gradient all-reduce not counted)",
        validation,
        f"{'every GPU' if scaling.use_gpu else 'every CPU'} a run holds counts for the whole run",
        "runs of a row differ in seed only: each costs what the row's measured arm does",
    )
    return Estimate(tuple(arms), devices, "GPU" if scaling.use_gpu else "CPU", concurrency, concurrency_source,
                    assumptions)


def format_estimate(est: Estimate) -> list[str]:
    lines = ["cost (runs still to train):",
             f"  {'row':<15} {'arm':<9} {'iterations/run':>14} {'s/iter':>8} {'val iters/run':>13} "
             f"{'val s/iter':>10} {est.device + ' time/run':>18} {'runs':>5}  source"]
    for a in est.arms:
        per_run = device_time_text(None if a.hours_per_run is None else a.hours_per_run * est.devices_per_run,
                                   est.device)
        per_iter = "-" if a.seconds_per_iter is None else f"{a.seconds_per_iter:.3g}"
        per_val_iter = "-" if a.val_seconds_per_iter is None else f"{a.val_seconds_per_iter:.3g}"
        lines.append(f"  {a.row:<15} {a.arm:<9} {a.iterations:>14} {per_iter:>8} {a.val_iterations:>13} "
                     f"{per_val_iter:>10} {per_run:>18} {a.runs_to_train:>5}  {a.source}")
    if est.device_hours is None:
        lines.append("  no estimate: pass --calibrate N (N iterations of each row on one worker) or "
                     "--seconds-per-iter ROW=S for every row")
    else:
        lines.append(f"estimate: {totals_text(est)}")
    lines += ["assumptions:", *(f"  - {text}" for text in est.assumptions)]
    return lines


def totals_text(est: Estimate) -> str:
    """The device time and the wall time of an estimate that has both."""
    return (f"{device_time_text(est.device_hours, est.device)}; wall {duration_text(est.wall_hours * HOUR)} at "
            f"{est.concurrency} run(s) at a time ({est.concurrency_source})")
