"""Ray overhead: seconds per training iteration through ``yolor-ray train`` with one
worker against a plain MMEngine Runner in one process, same config, data, batch, seed
and threads. Repetitions interleave (Ray first, then plain first, ...); each run is a
fresh process; the first iterations of every run are warm-up and left out.

Ray's own processes (driver, raylet, GCS, dashboard, Ray Train's actors) get their share
of the machine the way a real node gives it, not out of the training's: every process of
a run starts on core 0, and the thread that trains (one torch thread) moves to core 1
(``bench.iter_times``, ``$YOLOR_BENCH_TRAIN_CPUS``), under Ray and in the plain Runner
alike. So both train on a core of their own, and what is measured is what Ray adds to
the training thread itself; what Ray's processes take of the other core is reported.

    python -m bench.ray_overhead [--pairs 3]       -> bench/results/ray_overhead.json

Goal: Ray / plain <= 1.03 per iteration. Start-up (process launch to the first
iteration) is reported beside it: Ray pays it once per run, not per iteration; goal
Ray <= plain + 10 s. Its profile: seconds per phase (``bench.startup_stamps`` wraps the
driver, ``bench.iter_times`` stamps the worker) and every process's CPU-seconds before the
first epoch. Start-up runs on one core, as every process of a run does until its
training thread moves.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench.common import (
    REPO,
    add_timed_training_options,
    alternate,
    fresh_scratch,
    iteration_seconds,
    log,
    positive_int,
    ratio_summary,
    shapes,
    summary,
    timed_run,
    train_args,
    write_result,
)
from bench.startup_stamps import STAMPS_ENV, StartupCpu, startup_phases

CONFIG = REPO / "bench" / "configs" / "atss_timed.py"
GOAL = 1.03
STARTUP_GOAL_S = 10.0  # Ray's start-up at most the plain Runner's + this


def others_cores(cpu: dict) -> float:
    """Cores' worth of CPU that every other process took while this run trained."""
    return sum(v for k, v in cpu["cpu_s"].items() if k != "this training process") / cpu["wall_s"]


def top_other_processes(runs: list[dict], variant: str, top: int = 6) -> dict[str, float]:
    """Mean cores used per process name (other than the training process) over the variant's runs."""
    totals: dict[str, float] = {}
    chosen = [r for r in runs if r["variant"] == variant]
    for run in chosen:
        cpu = run["cpu_while_training"]
        for name, seconds in cpu["cpu_s"].items():
            if name != "this training process":
                totals[name] = totals.get(name, 0.0) + seconds / cpu["wall_s"] / len(chosen)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1])[:top])


def mean_of_dicts(dicts, largest_first: bool = False) -> dict[str, float]:
    """Key by key, the mean over the dicts (a key missing from one counts 0 there), in the
    order the keys first come (``largest_first``: by the mean)."""
    dicts = list(dicts)
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    means = {k: round(statistics.fmean(d.get(k, 0.0) for d in dicts), 2) for k in keys}
    return dict(sorted(means.items(), key=lambda kv: -kv[1])) if largest_first else means


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timed_training_options(parser, pairs=3, pairs_of="Ray/plain", images=96, warmup=8)
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (and Ray CPUs) of the one worker (default 1: the core it is pinned to)")
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < args.threads + 1:
        parser.error(f"pinning needs {args.threads + 1} cores (the training's {args.threads} and one for the rest), "
                     f"this process may use {len(cores)}")
    pin = ({cores[0]}, set(cores[1:1 + args.threads]))  # (every process of a run, its training thread)

    data = shapes("overhead", args.images, 8, args.image_size)
    scratch = fresh_scratch("ray_overhead")
    runs = []
    for pair in range(args.pairs):
        for variant in alternate(pair, ("ray", "plain")):
            name = f"{variant}-{pair}"
            command = train_args(CONFIG, data, image_size=args.image_size, batch_size=args.batch_size, epochs=1,
                                 num_workers=1, threads=args.threads, storage=scratch / "storage", name=name)
            # the same train arguments, the driver stamped (bench.startup_stamps)
            module = "bench.plain_runner" if variant == "plain" else "yolor_ray.cli"
            command = [sys.executable, "-m", "bench.startup_stamps", module, *command[3:]]
            stamps_file = scratch / f"{name}.stamps.json"
            with StartupCpu(marker=str(stamps_file)) as startup_cpu:
                run = timed_run(command, args.threads, scratch, name, pin=pin,
                                extra_env={STAMPS_ENV: str(stamps_file)})
            first_epoch = run.stamps["epochs"][0][0]
            phases = startup_phases(run.launched, json.loads(stamps_file.read_text()), run.stamps["stamps"],
                                    first_epoch, plain=variant == "plain")
            seconds = iteration_seconds(run.stamps, args.warmup)
            others = others_cores(run.stamps["cpu"])
            runs.append(dict(variant=variant, pair=pair, wall_s=round(run.wall_s, 2),
                             startup_s=round(run.startup_s, 2), startup_phases_s=phases,
                             startup_cpu_s=startup_cpu.until(first_epoch), iteration_s=summary(seconds),
                             iterations=[round(s, 4) for s in seconds], cpu_while_training=run.stamps["cpu"],
                             other_processes_cores=others))
            described = ", ".join(f"{phase} {s:.1f}" for phase, s in phases.items())
            log(f"{name}: {statistics.fmean(seconds):.3f} s/iter over {len(seconds)} iterations, "
                f"{run.startup_s:.1f} s to the first iteration ({described}), {run.wall_s:.0f} s in all; other "
                f"processes used {others:.2f} cores while it trained")

    def mean_of(variant, pair):
        return next(r["iteration_s"]["mean"] for r in runs if r["variant"] == variant and r["pair"] == pair)

    ratios = [mean_of("ray", p) / mean_of("plain", p) for p in range(args.pairs)]
    ratio = ratio_summary(ratios)
    startup = {v: statistics.fmean(r["startup_s"] for r in runs if r["variant"] == v) for v in ("ray", "plain")}
    log(f"Ray / plain per iteration: {ratio['mean']:.3f} (pairs {ratio['pairs']}); goal <= {GOAL}")
    log(f"start-up: Ray {startup['ray']:.1f} s, plain {startup['plain']:.1f} s; "
        f"goal Ray <= plain + {STARTUP_GOAL_S:g} s")
    write_result("ray_overhead", dict(
        question="seconds per training iteration: yolor-ray train with 1 Ray worker vs a plain MMEngine Runner",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, **vars(args), epochs=1, val_images=8,
                    pinned=dict(processes=sorted(pin[0]), training_thread=sorted(pin[1]))),
        runs=runs, ratio=ratio, goal=f"ray / plain <= {GOAL}", met=ratio["mean"] <= GOAL,
        startup_s=startup, startup_goal=f"ray <= plain + {STARTUP_GOAL_S:g} s",
        startup_met=startup["ray"] <= startup["plain"] + STARTUP_GOAL_S,
        # The start-up's profile: mean seconds per phase, and CPU-seconds per process before the first epoch
        startup_phases_s={v: mean_of_dicts(r["startup_phases_s"] for r in runs if r["variant"] == v)
                          for v in ("ray", "plain")},
        startup_cpu_s={v: mean_of_dicts((r["startup_cpu_s"] for r in runs if r["variant"] == v), largest_first=True)
                       for v in ("ray", "plain")},
        # The profile: what else ran on the cores while the iterations were timed.
        other_processes_cores={v: statistics.fmean(r["other_processes_cores"] for r in runs if r["variant"] == v)
                               for v in ("ray", "plain")},
        top_other_processes={v: top_other_processes(runs, v) for v in ("ray", "plain")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
