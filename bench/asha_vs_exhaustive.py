"""ASHA against an exhaustive sweep over the same 8 implicit variants on shapes: the
worker-seconds each spends and the best bbox AP each finds, with the run-to-run noise
of that AP (the best variant trained again with other seeds).

Both sweeps are ``run_sweep`` with ``--search grid`` over placements {fpn, pred,
fpn+pred, head_in} x modeling {vector, mf}; the exhaustive one with
``early_stopping=False``. One local Ray holds two trials at a time (each trial's actor
takes a CPU but idles; its one worker trains on one core), the same for both sweeps.

    python -m bench.asha_vs_exhaustive            -> bench/results/asha_vs_exhaustive.json

Goal: ASHA <= 50% of the exhaustive worker-seconds, its best AP within the noise.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from bench.common import REPO, fresh_scratch, log, shapes, write_result

CONFIG = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
SPACE = dict(placements=[["fpn"], ["pred"], ["fpn", "pred"], ["head_in"]], modeling=["vector", "mf"])
METRIC = "coco/bbox_mAP"
COST_GOAL = 0.5


def tune_records(sweep_dir: Path) -> dict[str, list[dict]]:
    """Each trial's reports as Tune recorded them (one per epoch), from Tune's own files."""
    records = {}
    for result_file in sweep_dir.glob("*/result.json"):
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


def run_one_sweep(train, mode: str, concurrent: int, scratch: Path) -> dict:
    from yolor_ray.sweep import SweepSpec, run_sweep

    spec = SweepSpec(train=train, space=SPACE, name=mode, search="grid", metric=METRIC,
                     early_stopping=mode == "asha", max_concurrent=concurrent)
    start = time.perf_counter()
    board = run_sweep(spec)
    wall = time.perf_counter() - start
    records = tune_records(scratch / "storage" / mode)
    seconds = {trial: lines[-1]["time_total_s"] for trial, lines in records.items()}  # Tune's time per trial
    trials = [dict(trial=e["trial"], variant=e["label"], status=e["status"], epochs=e["epochs_run"],
                   ap=e["metrics"].get(METRIC), best_ap=e.get("best"), seconds=seconds.get(e["trial"]))
              for e in board["trials"]]
    completed = [t for t in trials if t["status"] == "completed"]
    best = max(completed, key=lambda t: t["ap"]) if completed else None
    worker_seconds = sum(t["seconds"] or 0.0 for t in trials) * train.num_workers
    log(f"{mode}: {wall:.0f} s, {worker_seconds:.0f} worker-s, {len(completed)}/{len(trials)} trials completed, "
        f"best {best['variant'] if best else '-'} AP {best['ap'] if best else float('nan'):.4f}")
    return dict(wall_s=wall, worker_seconds=worker_seconds, epochs_trained=sum(t["epochs"] for t in trials),
                trials=trials, best=best, leaderboard=board["location"], profile=startup_profile(records))


def seed_noise(train, variant: dict, seeds: list[int]) -> list[float]:
    """The best variant trained again with other seeds, side by side (Ray tasks, one CPU each)."""
    import ray

    from yolor_ray.space import implicit_of
    from yolor_ray.train import run_training

    @ray.remote(num_cpus=1)
    def train_once(spec):
        return run_training(spec)["metrics"][METRIC]

    specs = [dataclasses.replace(train, name=f"noise-seed{seed}", seed=seed, implicit=implicit_of(variant))
             for seed in seeds]
    return ray.get([train_once.remote(spec) for spec in specs])


def main(argv: list[str] | None = None) -> int:
    import ray

    from yolor_ray.spec import TrainSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--val-images", type=int, default=24)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.02, help="the config's LR before auto_scale_lr (default "
                        "0.02: from scratch in 3 epochs, mmdet's 0.01 leaves most trials at AP 0)")
    parser.add_argument("--concurrent", type=int, default=2, help="trials at a time (default 2, one per core)")
    parser.add_argument("--noise-seeds", type=int, nargs="+", default=[1, 2],
                        help="seeds the best variant is trained again with (default 1 2; the sweeps use 0)")
    args = parser.parse_args(argv)

    data = shapes("asha", args.images, args.val_images, args.image_size)
    scratch = fresh_scratch("asha_vs_exhaustive")
    train = TrainSpec(config=CONFIG, data_root=data, small=True, image_size=args.image_size, epochs=args.epochs,
                      batch_size=args.batch_size, num_workers=1, storage=str(scratch / "storage"), num_samples=0,
                      keep_checkpoints=1, cfg_options={"optim_wrapper.optimizer.lr": args.lr})
    # One trial = its actor (1 CPU, idle) + one worker (1 CPU): logical CPUs for `concurrent` trials.
    ray.init(address="local", num_cpus=2 * args.concurrent, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level=logging.WARNING)
    try:
        sweeps = {mode: run_one_sweep(train, mode, args.concurrent, scratch) for mode in ("exhaustive", "asha")}
        best = sweeps["exhaustive"]["best"]
        board = json.loads((scratch / "storage" / "exhaustive" / "leaderboard.json").read_text())
        variant = next(e["variant"] for e in board["trials"] if e["trial"] == best["trial"])
        start = time.perf_counter()
        again = seed_noise(train, variant, args.noise_seeds)
        log(f"best variant {best['variant']} with seeds {args.noise_seeds}: AP {again} "
            f"({time.perf_counter() - start:.0f} s)")
    finally:
        ray.shutdown()

    seed_aps = [best["ap"], *again]
    noise = dict(variant=best["variant"], seeds=[0, *args.noise_seeds], ap=seed_aps,
                 stdev=statistics.stdev(seed_aps), range=max(seed_aps) - min(seed_aps))
    # The same variant and seed in both sweeps: how far two identical runs land apart.
    same = [(t["variant"], t["ap"], u["ap"]) for t in sweeps["exhaustive"]["trials"]
            for u in sweeps["asha"]["trials"] if t["variant"] == u["variant"] and u["status"] == "completed"]
    cost_ratio = sweeps["asha"]["worker_seconds"] / sweeps["exhaustive"]["worker_seconds"]
    ap_gap = sweeps["exhaustive"]["best"]["ap"] - (sweeps["asha"]["best"] or {}).get("ap", float("nan"))
    log(f"ASHA / exhaustive worker-seconds: {cost_ratio:.3f} (goal <= {COST_GOAL}); best AP gap {ap_gap:+.4f}, "
        f"seed noise: stdev {noise['stdev']:.4f}, range {noise['range']:.4f}")
    write_result("asha_vs_exhaustive", dict(
        question="worker-seconds and best bbox AP: ASHA vs every variant to the end, same 8-variant space",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, space=SPACE, metric=METRIC, **vars(args)),
        sweeps=sweeps, cost_ratio=cost_ratio, best_ap_gap=ap_gap, noise=noise,
        same_variant_same_seed=[dict(variant=v, exhaustive=a, asha=b) for v, a, b in same],
        goal=f"asha / exhaustive worker-seconds <= {COST_GOAL}, best AP gap within the seed noise (range)",
        met=dict(cost=cost_ratio <= COST_GOAL, ap=abs(ap_gap) <= noise["range"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
