"""What a reproduction will cost, before cluster time: iterations per run from the config and
the data, seconds per iteration measured (``calibrate``) or given, device-hours and wall time
at the runs that fit side by side. Every assumption is printed with the figures."""
from __future__ import annotations

import functools
import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

from yolor_ray import config as cfglib
from yolor_ray.data.coco import CocoFolder
from yolor_ray.reproduce.plan import ReproducePlan


@dataclass(frozen=True)
class ArmCost:
    """One row's arm: what each of its runs costs."""

    row: str
    arm: str
    iterations: int  # per run: epochs x iterations per epoch
    seconds_per_iter: float | None
    source: str  # where seconds_per_iter comes from
    runs_to_train: int

    @property
    def hours_per_run(self) -> float | None:
        """Wall hours of one run's training iterations."""
        return None if self.seconds_per_iter is None else self.iterations * self.seconds_per_iter / 3600


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
    dataset = cfglib.innermost_dataset(cfg.train_dataloader)
    ann_file = (Path(dataset.get("data_root") or "") / dataset["ann_file"]).resolve()
    return _images_in(str(ann_file), bool((dataset.get("filter_cfg") or {}).get("filter_empty_gt")))


@functools.lru_cache(maxsize=None)
def _images_in(ann_file: str, with_annotations_only: bool) -> int:
    """Images of a COCO annotation file (read once for every row that trains on it)."""
    coco = json.loads(Path(ann_file).read_bytes(), parse_float=lambda _: 0.0)  # its floats are not needed
    if with_annotations_only:
        return len({a["image_id"] for a in coco.get("annotations", []) if not a.get("iscrowd")})
    return len(coco["images"])


def iterations_per_run(cfg: Config, images: int, num_workers: int) -> int:
    total_batch = cfg.train_dataloader.batch_size * num_workers
    return cfg.train_cfg.max_epochs * math.ceil(images / total_batch)


def estimate(plan: ReproducePlan, seconds: dict[tuple[str, str], tuple[float, str]], concurrency: int,
             concurrency_source: str) -> Estimate:
    """``seconds``: (row, arm) -> (seconds per iteration, where the figure comes from)."""
    train = plan.spec.train
    pending = [(run.row, run.arm) for run in plan.pending]
    arms = []
    for (row, arm), cfg in plan.configs.items():
        images = train_images(cfg, plan.data)
        per_iter, source = seconds.get((row, arm), (None, "not measured"))
        arms.append(ArmCost(row, arm, iterations_per_run(cfg, images, train.num_workers), per_iter, source,
                            pending.count((row, arm))))
    devices = train.num_workers * (1 if train.use_gpu else train.cpus_per_worker)
    assumptions = (
        "an iteration of W workers takes what one worker's took (DDP at the same batch per worker; "
        "its gradient all-reduce not counted)",
        "validation after each epoch, start-up and checkpoint uploads are not counted (they add to both arms)",
        f"{'every GPU' if train.use_gpu else 'every CPU'} a run holds counts for the whole run",
        "runs of a row differ in seed only: each costs what the row's measured arm does",
    )
    return Estimate(tuple(arms), devices, "GPU" if train.use_gpu else "CPU", concurrency, concurrency_source,
                    assumptions)


def format_estimate(est: Estimate) -> list[str]:
    unit = f"{est.device}-hours"
    lines = ["cost (runs still to train):",
             f"  {'row':<15} {'arm':<9} {'iterations/run':>14} {'s/iter':>8} {unit + '/run':>14} {'runs':>5}  source"]
    for a in est.arms:
        per_run = "-" if a.hours_per_run is None else f"{a.hours_per_run * est.devices_per_run:.3g}"
        per_iter = "-" if a.seconds_per_iter is None else f"{a.seconds_per_iter:.3g}"
        lines.append(f"  {a.row:<15} {a.arm:<9} {a.iterations:>14} {per_iter:>8} {per_run:>14} "
                     f"{a.runs_to_train:>5}  {a.source}")
    if est.device_hours is None:
        lines.append("  no estimate: pass --calibrate N (N iterations of each row on one worker) or "
                     "--seconds-per-iter ROW=S for every row")
    else:
        lines.append(f"estimate: {est.device_hours:.3g} {unit}; wall {est.wall_hours:.3g} h at {est.concurrency} "
                     f"run(s) at a time ({est.concurrency_source})")
    lines += ["assumptions:", *(f"  - {text}" for text in est.assumptions)]
    return lines
