"""The fixed cost of one sweep trial: what a 1-worker trial pays besides its epochs, for a
trial that trains in its own Tune actor (the default) and for one that is a TorchTrainer
run (``--trainer-runs``, what every trial was before).

Per kind of trial, two sweeps on one local Ray, one trial at a time, variants of one cost
(ATSS + YOLOR on fpn, shapes): 1 trial of K epochs, and K trials of 1 epoch each (K = 4).
Both train K epochs and pay the sweep's own start once, so their difference over K - 1 is
one more trial's fixed cost: its model and data, its results, Ray Train's helpers where
there are any, and its actor and imports where the actor is not reused (an in-process
trial reuses the actor the trial before it leaves; a TorchTrainer trial's actor is fresh).
Measured as wall time and as CPU-seconds of the bench's own processes, Ray's included
(/proc, grouped by what the process is), the same difference per group.

    python -m bench.trial_overhead            -> bench/results/trial_overhead.json

Goal: a 1-worker trial's fixed cost <= 10 s wall and <= 15 CPU-s (in-process trials).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

from bench.asha_vs_exhaustive import grouped, startup_profile, tune_records
from bench.common import REPO, fresh_scratch, log, positive_int, shapes, write_result
from bench.cpu_profile import CpuSampler

CONFIG = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
# Variants of one cost: the same placement, its initial spread apart (a sweep runs each variant
# once, so K trials need K of them; the spread changes no step's work).
SPACE = dict(placements=[["fpn"]], init=dict(add_std=[0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
KINDS = ("in_process", "trainer")  # keys of results/trial_overhead.json: in its Tune actor, a TorchTrainer run
GOAL_WALL_S, GOAL_CPU_S = 10.0, 15.0


def one_sweep(train, kind: str, trials: int, epochs: int, scratch) -> dict:
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import run_sweep

    name = f"{kind}-{trials}x{epochs}"
    spec = SweepSpec(config=CONFIG, train=dataclasses.replace(train, epochs=epochs), space=SPACE, name=name,
                     trials=trials, search="random", early_stopping=False, max_concurrent=1,
                     trainer_runs=kind == "trainer")
    with CpuSampler(own_label="bench driver", own_tree=True) as cpu:  # not other work on a shared machine
        board = run_sweep(spec)
    statuses = [t.status for t in board.trials]
    if statuses != ["completed"] * trials:
        raise RuntimeError(f"sweep {name}: trials ended {statuses}")
    records = tune_records(scratch / "storage" / name)
    log(f"{name}: {cpu.result['wall_s']:.1f} s, {cpu.result['total_cpu_s']:.1f} CPU-s")
    return dict(trials=trials, epochs=epochs, wall_s=cpu.result["wall_s"], cpu_s=cpu.result["total_cpu_s"],
                groups=grouped(cpu.result["cpu_s"]), processes=cpu.result["cpu_s"],
                profile=startup_profile(records) if epochs > 1 else None,
                # trial start to its first report (its start-up and first epoch), in trial order
                first_report_s=[round(records[t][0]["time_this_iter_s"], 2) for t in sorted(records)])


def fixed_cost(many_trials: dict, one_trial: dict) -> dict:
    """K trials x 1 epoch less 1 trial x K epochs, over K - 1: one more trial's cost besides its epochs."""
    extra = many_trials["trials"] - 1
    groups = {g: round((many_trials["groups"].get(g, 0.0) - one_trial["groups"].get(g, 0.0)) / extra, 1)
              for g in {*many_trials["groups"], *one_trial["groups"]}}
    return dict(wall_s=(many_trials["wall_s"] - one_trial["wall_s"]) / extra,
                cpu_s=(many_trials["cpu_s"] - one_trial["cpu_s"]) / extra,
                groups=dict(sorted(groups.items(), key=lambda kv: -kv[1])))


def main(argv: list[str] | None = None) -> int:
    script_start = time.perf_counter()
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.ray_cluster import private_ray
    from yolor_ray.train.spec import Checkpointing, RunSettings, Scaling

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=16)
    parser.add_argument("--val-images", type=positive_int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--trials", type=int, default=4, help="K: the sweeps are 1 x K and K x 1 (default 4)")
    args = parser.parse_args(argv)
    variants = len(SPACE["init"]["add_std"])
    if not 2 <= args.trials <= variants:
        parser.error(f"--trials must be >= 2 (the difference of 1 x K and K x 1) and <= {variants} (the space's "
                     f"variants), got {args.trials}")
    k = args.trials

    data = shapes("trial-overhead", args.images, args.val_images, args.image_size)
    scratch = fresh_scratch("trial_overhead")
    train = RunSettings(data_root=data, small=True, image_size=args.image_size, batch_size=args.batch_size,
                        scaling=Scaling(num_workers=1), storage=StorageSpec(str(scratch / "storage")), num_samples=0,
                        checkpoints=Checkpointing(keep=1))
    # 2 logical CPUs: a TorchTrainer trial's actor and its worker, or an in-process trial alone.
    # The private local Ray `yolor-ray tune` starts on a machine of its own (ray_cluster.private_ray).
    sweeps: dict[str, dict] = {kind: {} for kind in KINDS}
    with private_ray(num_cpus=2, logging_level=logging.WARNING):
        # Interleaved: in-process, trainer, trainer, in-process (drift and going first cancel).
        for kind, trials, epochs in (("in_process", 1, k), ("trainer", 1, k), ("trainer", k, 1),
                                     ("in_process", k, 1)):
            sweeps[kind][f"{trials}x{epochs}"] = one_sweep(train, kind, trials, epochs, scratch)

    fixed = {kind: fixed_cost(sweeps[kind][f"{k}x1"], sweeps[kind][f"1x{k}"]) for kind in KINDS}
    in_actor, trainer = fixed["in_process"], fixed["trainer"]
    for kind in KINDS:
        log(f"{kind}: fixed cost per trial {fixed[kind]['wall_s']:.1f} s wall, {fixed[kind]['cpu_s']:.1f} CPU-s "
            f"({', '.join(f'{g} {s:g}' for g, s in fixed[kind]['groups'].items())})")
    write_result("trial_overhead", dict(
        question="the fixed cost of one 1-worker sweep trial: trained in its Tune actor vs a TorchTrainer run",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, space=SPACE, **vars(args)),
        sweeps=sweeps, fixed=fixed, script_s=time.perf_counter() - script_start,
        wall_ratio=in_actor["wall_s"] / trainer["wall_s"], cpu_ratio=in_actor["cpu_s"] / trainer["cpu_s"],
        goal=f"in-process trial: <= {GOAL_WALL_S:g} s wall and <= {GOAL_CPU_S:g} CPU-s fixed cost",
        met=dict(wall=in_actor["wall_s"] <= GOAL_WALL_S, cpu=in_actor["cpu_s"] <= GOAL_CPU_S)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
