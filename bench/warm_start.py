"""Warm starts: the same 8 implicit variants swept from scratch (every one trained to the
end) and fine-tuned from one trained baseline with ASHA, what each costs, which variant
each finds, and whether a confirmation with seeds puts that variant beyond noise.

On one local Ray, in this order (each phase a ``run_sweep`` or ``run_training`` call, as
``yolor-ray tune`` and ``yolor-ray train`` make them):

1. *scratch*: ``--search grid`` over placements {fpn, pred, fpn+pred, head_in} x
   modeling {vector, mf} (the ``asha_vs_exhaustive`` space), ``--no-early-stopping``,
   ``--epochs E`` from scratch;
2. *baseline*: the config without implicit knowledge trained the same way, seed 0: the
   baseline a warm start needs (and the reference table needs anyway). It is trained into the
   scratch sweep's confirmation folder as ``baseline-seed0``, so that confirmation
   reuses it rather than training it twice;
3. *scratch confirmation*: the scratch sweep again with ``--confirm 1 --seeds 2`` (its
   winner and the baseline at seeds 0 and 1; nothing of the sweep is trained again);
4. *warm*: the same grid, ASHA, ``--from`` the baseline, ``--epochs W`` of fine-tuning;
5. *warm confirmation*: ``--confirm 1 --seeds 2`` on the warm sweep (warm-started
   baseline and winner at seeds 0 and 1).

Cost is counted as worker-seconds (Tune's time of every trial, the baseline run's wall
time) and as the CPU-seconds of every process on the machine during each phase (/proc).

    python -m bench.warm_start            -> bench/results/warm_start.json

Goal: warm sweep / scratch sweep <= 0.15 of the cost without the baseline's training.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

from bench.asha_vs_exhaustive import SPACE, grouped, tune_records
from bench.common import REPO, fresh_scratch, log, positive_int, shapes, write_result
from bench.cpu_profile import CpuSampler

CONFIG = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
METRIC = "coco/bbox_mAP"
GOAL = 0.15


def measured(label: str, call) -> tuple[object, dict]:
    """``call()`` with every process's CPU-seconds sampled around it."""
    with CpuSampler(own_label="bench driver") as cpu:
        value = call()
    result = dict(wall_s=cpu.result["wall_s"], cpu_s=cpu.result["total_cpu_s"], groups=grouped(cpu.result["cpu_s"]))
    log(f"{label}: {result['wall_s']:.0f} s, {result['cpu_s']:.0f} CPU-s")
    return value, result


def worker_seconds(folder) -> float:
    """Tune's time of every trial under ``folder`` (1 worker each)."""
    return sum(lines[-1]["time_total_s"] for lines in tune_records(folder).values())


def sweep_summary(board, cost: dict, trial_seconds: float) -> dict:
    trials = [dict(trial=e.trial, variant=e.label, status=e.status, epochs=e.epochs_run, ap=e.metrics.get(METRIC),
                   start_ap=e.before_training.get(METRIC)) for e in board.trials]
    best = next((t for t in trials if t["status"] == "completed"), None)
    return dict(cost, worker_seconds=trial_seconds, epochs_trained=sum(t["epochs"] for t in trials),
                completed=sum(t["status"] == "completed" for t in trials), trials=trials, best=best)


def confirmed(board, cost: dict, trial_seconds: float) -> dict:
    """The winner's confirmation: its paired difference to the baseline with its interval."""
    confirmation = board.confirmation
    (variant,) = confirmation.variants
    paired = variant.paired
    return dict(cost, worker_seconds=trial_seconds, seeds=confirmation.seeds, method=confirmation.method,
                baseline=dict(values=confirmation.baseline.values, mean=confirmation.baseline.mean),
                variant=variant.label, values=paired.variant.values, mean=paired.variant.mean,
                diff=paired.diff_mean, low=paired.low, high=paired.high, within_noise=paired.within_noise)


def main(argv: list[str] | None = None) -> int:
    script_start = time.perf_counter()
    import ray

    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.driver import run_training
    from yolor_ray.train.spec import Checkpointing, RunSettings, Scaling, WarmStart
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import run_sweep

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=32)
    parser.add_argument("--val-images", type=positive_int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=positive_int, default=8, help="from scratch: every scratch trial's epochs")
    parser.add_argument("--finetune-epochs", type=positive_int, default=2, help="warm: each trial's epochs")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--lr", type=float, default=0.02, help="the config's LR from scratch (default 0.02)")
    parser.add_argument("--finetune-lr-factor", type=float, default=0.1, help="fine-tuning LR = --lr x this "
                        "(default 0.1, yolor-ray's own default factor)")
    parser.add_argument("--reduction-factor", type=int, default=4, help="the warm sweep's ASHA (default 4: of 2 "
                        "fine-tuning epochs, a quarter of the trials go on to the second)")
    args = parser.parse_args(argv)

    data = shapes("warm", args.images, args.val_images, args.image_size)
    scratch = fresh_scratch("warm_start")
    storage = scratch / "storage"
    train = RunSettings(data_root=data, small=True, image_size=args.image_size, epochs=args.epochs,
                        batch_size=args.batch_size, scaling=Scaling(num_workers=1), storage=StorageSpec(str(storage)),
                        num_samples=0, checkpoints=Checkpointing(keep=1),
                        cfg_options={"optim_wrapper.optimizer.lr": args.lr})
    from_scratch = SweepSpec(config=CONFIG, train=train, space=SPACE, name="scratch", search="grid", metric=METRIC,
                             early_stopping=False, max_concurrent=2)
    ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             logging_level=logging.WARNING)
    try:
        board, cost = measured("scratch sweep", lambda: run_sweep(from_scratch))
        phases = dict(scratch=sweep_summary(board, cost, worker_seconds(storage / "scratch" / "runs")))
        baseline_run = storage / "scratch" / "confirm" / "baseline-seed0"
        baseline = dataclasses.replace(train, storage=StorageSpec(str(baseline_run.parent))).for_run(
            CONFIG, baseline_run.name)
        record, cost = measured("baseline", lambda: run_training(baseline, progress=False))
        phases["baseline"] = dict(cost, worker_seconds=record.wall_time_s, ap=record.metrics.get(METRIC),
                                  run=str(baseline_run))
        board, cost = measured("scratch confirmation",
                               lambda: run_sweep(dataclasses.replace(from_scratch, confirm=1, seeds=2)))
        phases["scratch_confirmation"] = confirmed(board, cost, worker_seconds(storage / "scratch" / "confirm"))

        # --cfg-options set the fine-tuning LR itself (docs/tune.md): the default factor, by hand.
        finetune_lr = args.lr * args.finetune_lr_factor
        warm_train = dataclasses.replace(train, epochs=args.finetune_epochs, warm_start=WarmStart(str(baseline_run)),
                                         cfg_options={"optim_wrapper.optimizer.lr": finetune_lr})
        warm = SweepSpec(config=CONFIG, train=warm_train, space=SPACE, name="warm", search="grid", metric=METRIC,
                         early_stopping=True, reduction_factor=args.reduction_factor, max_concurrent=2)
        board, cost = measured("warm sweep", lambda: run_sweep(warm))
        phases["warm"] = sweep_summary(board, cost, worker_seconds(storage / "warm" / "runs"))
        board, cost = measured("warm confirmation", lambda: run_sweep(dataclasses.replace(warm, confirm=1, seeds=2)))
        phases["warm_confirmation"] = confirmed(board, cost, worker_seconds(storage / "warm" / "confirm"))
    finally:
        ray.shutdown()

    scratch_cost, warm_cost, base_cost = phases["scratch"], phases["warm"], phases["baseline"]
    ratios = {}
    for unit in ("worker_seconds", "cpu_s"):
        ratios[unit] = dict(without_baseline=warm_cost[unit] / scratch_cost[unit],
                            with_baseline=(warm_cost[unit] + base_cost[unit]) / scratch_cost[unit])
    ratios["epochs"] = warm_cost["epochs_trained"] / scratch_cost["epochs_trained"]
    for side in ("scratch", "warm"):
        c, best = phases[f"{side}_confirmation"], phases[side]["best"]
        log(f"{side}: best {best['variant']} AP {best['ap']:.4f}; confirmed {c['variant']}: "
            f"{c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] "
            f"({'within' if c['within_noise'] else 'beyond'} noise)")
    log(f"warm / scratch: worker-seconds {ratios['worker_seconds']['without_baseline']:.3f} "
        f"(with the baseline's training {ratios['worker_seconds']['with_baseline']:.3f}), CPU-s "
        f"{ratios['cpu_s']['without_baseline']:.3f} ({ratios['cpu_s']['with_baseline']:.3f}); goal <= {GOAL}")
    write_result("warm_start", dict(
        question="what a sweep of 8 variants costs fine-tuned from one baseline with ASHA vs every variant "
                 "trained from scratch, and what each finds, confirmed with 2 seeds",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, space=SPACE, metric=METRIC, **vars(args)),
        phases=phases, ratios=ratios, script_s=time.perf_counter() - script_start,
        goal=f"warm sweep / scratch sweep <= {GOAL} (worker-seconds and CPU-seconds, the baseline's training "
             "not counted)",
        met={unit: ratios[unit]["without_baseline"] <= GOAL for unit in ("worker_seconds", "cpu_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
