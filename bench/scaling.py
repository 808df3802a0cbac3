"""Data-parallel scaling: training images per second through ``yolor-ray train`` with
1 worker x 2 threads against 2 workers x 1 thread (DDP over gloo), so both use the
machine's 2 cores; same config, data and per-worker batch. Interleaved repetitions,
warm-up iterations left out.

    python -m bench.scaling [--pairs 2]       -> bench/results/scaling.json

The GPU half of the question (1-GPU DDP under Ray against plain MMEngine) needs a GPU
machine; none was lent when these figures were taken, and the result says so.
"""
from __future__ import annotations

import argparse
import statistics
import sys

from bench.common import (
    REPO,
    add_timed_training_options,
    alternate,
    fresh_scratch,
    iteration_seconds,
    log,
    ratio_summary,
    shapes,
    summary,
    timed_run,
    train_args,
    write_result,
)

CONFIG = REPO / "bench" / "configs" / "atss_timed.py"
CORES = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timed_training_options(parser, pairs=2, pairs_of="1-worker/2-worker", images=128, warmup=6)
    args = parser.parse_args(argv)

    data = shapes("scaling", args.images, 8, args.image_size)
    scratch = fresh_scratch("scaling")
    runs = []
    for pair in range(args.pairs):
        for workers in alternate(pair, (1, 2)):
            threads = CORES // workers
            name = f"w{workers}-{pair}"
            command = train_args(CONFIG, data, image_size=args.image_size, batch_size=args.batch_size, epochs=1,
                                 num_workers=workers, threads=threads, storage=scratch / "storage", name=name)
            run = timed_run(command, threads, scratch, name)
            seconds = iteration_seconds(run.stamps, args.warmup)
            images_per_s = workers * args.batch_size / statistics.fmean(seconds)
            runs.append(dict(workers=workers, threads_per_worker=threads, pair=pair, wall_s=round(run.wall_s, 2),
                             images_per_s=images_per_s, iteration_s=summary(seconds),
                             iterations=[round(s, 4) for s in seconds]))
            log(f"{name}: {workers} worker(s) x {threads} thread(s): {images_per_s:.2f} images/s "
                f"({statistics.fmean(seconds):.3f} s/iter over {len(seconds)} iterations)")

    def rate(workers, pair):
        return next(r["images_per_s"] for r in runs if r["workers"] == workers and r["pair"] == pair)

    speedup = ratio_summary([rate(2, p) / rate(1, p) for p in range(args.pairs)])
    log(f"2 workers / 1 worker images/s: {speedup['mean']:.3f} (pairs {speedup['pairs']})")
    write_result("scaling", dict(
        question="training images/s, 1 worker x 2 threads vs 2 DDP workers x 1 thread, on 2 cores",
        inputs=dict(config=str(CONFIG.relative_to(REPO)), small=True, **vars(args), epochs=1, cores=CORES),
        runs=runs, speedup=speedup,
        images_per_s={w: statistics.fmean(r["images_per_s"] for r in runs if r["workers"] == w) for w in (1, 2)},
        gpu="not measured: no GPU machine was lent to this session"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
