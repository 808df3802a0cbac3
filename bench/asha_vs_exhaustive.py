"""ASHA against an exhaustive sweep over the same 8 implicit variants on shapes: the
worker-seconds each spends and the best bbox AP each finds, with the run-to-run noise
of that AP.

Both sweeps are ``run_sweep`` with ``--search grid`` over placements {fpn, pred,
fpn+pred, head_in} x modeling {vector, mf}; the exhaustive one with
``early_stopping=False`` and seed 0, the ASHA one with seed 1, as two independent
sweeps would run. The noise is measured on the variants both ran to the end: the same
variant at seeds 0 and 1. One local Ray of 2 CPUs holds two trials at a time (each
1-worker trial trains in its own Tune actor with one thread), the same for both sweeps.
ASHA's rungs follow from ``--epochs`` and ``--reduction-factor`` (8 and 4: it compares
trials after epochs 1 and 4). The cost is counted twice: worker-seconds (Tune's time per
trial x workers) and the CPU-seconds of every process on the machine while the sweep
ran, from /proc, grouped by what the process is: the profile of where the cost goes.

    python -m bench.asha_vs_exhaustive            -> bench/results/asha_vs_exhaustive.json

Goal: ASHA <= 50% of the exhaustive worker-seconds, its best AP within the noise.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.common import REPO, fresh_scratch, log, positive_int, shapes, write_result
from bench.cpu_profile import CpuSampler

CONFIG = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
SPACE = dict(placements=[["fpn"], ["pred"], ["fpn", "pred"], ["head_in"]], modeling=["vector", "mf"])
METRIC = "coco/bbox_mAP"
COST_GOAL = 0.5
# Ray's own actors beside the trials and their workers (class names): what Ray Train 2.60
# starts for every TorchTrainer run, and Tune's queue and the autoscaling coordinator.
RAY_HELPER_ACTORS = ("TrainController", "PlacementGroupCleaner", "SynchronizationActor", "DatasetManager",
                     "PreemptionWatcher", "TrainStateActor", "_AutoscalingCoordinatorActor", "_QueueActor")


def tune_records(sweep_dir: Path) -> dict[str, list[dict]]:
    """Each trial's reports as Tune recorded them (one per epoch), from Tune's own files
    (in runs/TRIAL for trials that train in their actors, beside runs/ for TorchTrainer ones)."""
    records = {}
    for result_file in [*sweep_dir.glob("*/result.json"), *sweep_dir.glob("runs/*/result.json")]:
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines:
            records[lines[-1]["trial_id"]] = lines
    return records


def startup_profile(records: dict[str, list[dict]]) -> dict:
    """Where a trial's time goes: its first report comes after start-up plus one epoch,
    later reports one epoch apart; the difference is what every trial pays to start."""
    first = [lines[0]["time_this_iter_s"] for lines in records.values()]
    later = [line["time_this_iter_s"] for lines in records.values() for line in lines[1:]]
    epoch = statistics.fmean(later) if later else float("nan")
    return dict(first_report_s=statistics.fmean(first), later_epoch_s=epoch,
                startup_s=statistics.fmean(first) - epoch)


def process_group(name: str) -> str:
    """What a process is, from its name in /proc (``ray::CLASS``, cut to 15 characters)."""
    if name == "bench driver":
        return name
    actor = name[len("ray::"):] if name.startswith("ray::") else None
    if actor and "RayTrainWorker".startswith(actor):
        return "Train workers"
    if actor and any(cls.startswith(actor) for cls in RAY_HELPER_ACTORS):
        return "Ray Train and Tune helper actors"
    if actor and "ImplicitFunc".startswith(actor):
        return "Tune trial actors"
    return "Ray's node processes and others"


def grouped(cpu_s: dict[str, float]) -> dict[str, float]:
    groups: dict[str, float] = defaultdict(float)
    for name, seconds in cpu_s.items():
        groups[process_group(name)] += seconds
    return {name: round(seconds, 1) for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1])}


def run_one_sweep(train, mode: str, concurrent: int, reduction_factor: int, scratch: Path) -> dict:
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import run_sweep

    spec = SweepSpec(config=CONFIG, train=train, space=SPACE, name=mode, search="grid", metric=METRIC,
                     early_stopping=mode == "asha", max_concurrent=concurrent, reduction_factor=reduction_factor)
    with CpuSampler(own_label="bench driver") as cpu:
        board = run_sweep(spec)
    records = tune_records(scratch / "storage" / mode)
    seconds = {trial: lines[-1]["time_total_s"] for trial, lines in records.items()}  # Tune's time per trial
    trials = [dict(trial=e.trial, variant=e.label, status=e.status, epochs=e.epochs_run,
                   ap=e.metrics.get(METRIC), best_ap=e.best, seconds=seconds.get(e.trial))
              for e in board.trials]
    completed = [t for t in trials if t["status"] == "completed"]
    best = max(completed, key=lambda t: t["ap"]) if completed else None
    worker_seconds = sum(t["seconds"] or 0.0 for t in trials) * train.scaling.num_workers
    log(f"{mode} (seed {train.seed}): {cpu.result['wall_s']:.0f} s, {worker_seconds:.0f} worker-s, "
        f"{cpu.result['total_cpu_s']:.0f} CPU-s, {len(completed)}/{len(trials)} trials completed, "
        f"best {best['variant'] if best else '-'} AP {best['ap'] if best else float('nan'):.4f}")
    return dict(seed=train.seed, wall_s=cpu.result["wall_s"], worker_seconds=worker_seconds,
                epochs_trained=sum(t["epochs"] for t in trials), trials=trials, best=best,
                leaderboard=board.location, profile=startup_profile(records),
                cpu=dict(cpu.result, groups=grouped(cpu.result["cpu_s"])))


def seed_noise(exhaustive: dict, asha: dict) -> dict:
    """Run-to-run noise of a variant's AP: the variants both sweeps ran to the end, one
    at each sweep's seed. ``sd`` is one run's standard deviation, sqrt(mean(d^2) / 2)
    over the pair differences d."""
    finished = {t["variant"]: t["ap"] for t in asha["trials"] if t["status"] == "completed"}
    pairs = [dict(variant=t["variant"], ap=[t["ap"], finished[t["variant"]]])
             for t in exhaustive["trials"] if t["variant"] in finished]
    diffs = [a - b for a, b in (p["ap"] for p in pairs)]
    return dict(seeds=[exhaustive["seed"], asha["seed"]], pairs=pairs,
                sd=math.sqrt(statistics.fmean(d * d for d in diffs) / 2) if diffs else float("nan"),
                max_abs_diff=max(map(abs, diffs)) if diffs else float("nan"))


def main(argv: list[str] | None = None) -> int:
    script_start = time.perf_counter()
    import ray

    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.spec import Checkpointing, RunSettings, Scaling

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=48)
    parser.add_argument("--val-images", type=positive_int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=positive_int, default=8)
    parser.add_argument("--reduction-factor", type=int, default=4, help="ASHA's (default 4: rungs at epochs 1 and 4 "
                        "of 8)")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--lr", type=float, default=0.02, help="the config's LR before auto_scale_lr (default "
                        "0.02: from scratch in 3 epochs, mmdet's 0.01 leaves most trials at AP 0)")
    parser.add_argument("--concurrent", type=positive_int, default=2, help="trials at a time (default 2, one per core)")
    parser.add_argument("--asha-seed", type=int, default=1, help="the ASHA sweep's seed (the exhaustive one uses 0)")
    args = parser.parse_args(argv)
    if args.asha_seed == 0:
        parser.error("--asha-seed must differ from the exhaustive sweep's seed 0: the noise comes from the pair")

    data = shapes("asha", args.images, args.val_images, args.image_size)
    scratch = fresh_scratch("asha_vs_exhaustive")
    train = RunSettings(data_root=data, small=True, image_size=args.image_size, epochs=args.epochs,
                        batch_size=args.batch_size, scaling=Scaling(num_workers=1),
                        storage=StorageSpec(str(scratch / "storage")), num_samples=0,
                        checkpoints=Checkpointing(keep=1), cfg_options={"optim_wrapper.optimizer.lr": args.lr})
    # One trial = its actor, which is its one worker (1 CPU): logical CPUs for `concurrent` trials.
    ray.init(address="local", num_cpus=args.concurrent, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level=logging.WARNING)
    start = time.perf_counter()
    try:
        sweeps = {mode: run_one_sweep(dataclasses.replace(train, seed=seed), mode, args.concurrent,
                                      args.reduction_factor, scratch)
                  for mode, seed in (("exhaustive", 0), ("asha", args.asha_seed))}
    finally:
        ray.shutdown()
    total_s = time.perf_counter() - start

    noise = seed_noise(sweeps["exhaustive"], sweeps["asha"])
    cost_ratio = sweeps["asha"]["worker_seconds"] / sweeps["exhaustive"]["worker_seconds"]
    cpu_ratio = sweeps["asha"]["cpu"]["total_cpu_s"] / sweeps["exhaustive"]["cpu"]["total_cpu_s"]
    epoch_ratio = sweeps["asha"]["epochs_trained"] / sweeps["exhaustive"]["epochs_trained"]
    ap_gap = sweeps["exhaustive"]["best"]["ap"] - (sweeps["asha"]["best"] or {}).get("ap", float("nan"))
    log(f"ASHA / exhaustive worker-seconds: {cost_ratio:.3f} (goal <= {COST_GOAL}), CPU-seconds {cpu_ratio:.3f}, "
        f"epochs trained {epoch_ratio:.3f}; "
        f"best AP gap {ap_gap:+.4f}, seed noise over {len(noise['pairs'])} variant(s): sd {noise['sd']:.4f}, "
        f"largest difference {noise['max_abs_diff']:.4f}; both sweeps {total_s:.0f} s")
    write_result("asha_vs_exhaustive", dict(
        question="worker-seconds and best bbox AP: ASHA vs every variant to the end, same 8-variant space",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, space=SPACE, metric=METRIC, **vars(args)),
        sweeps=sweeps, sweeps_wall_s=total_s, script_s=time.perf_counter() - script_start, cost_ratio=cost_ratio,
        cpu_ratio=cpu_ratio, epoch_ratio=epoch_ratio, best_ap_gap=ap_gap, noise=noise,
        goal=f"asha / exhaustive worker-seconds <= {COST_GOAL}, best AP gap within the seed noise "
             "(the largest seed-to-seed difference of one variant)",
        met=dict(cost=cost_ratio <= COST_GOAL, ap=abs(ap_gap) <= noise["max_abs_diff"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
