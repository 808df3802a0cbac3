"""What every benchmark shares: the machine record, the result file, shapes data,
per-iteration timings and the statistics reported with each ratio.

Each script is ``python -m bench.NAME`` from the repo root (``make bench`` runs them all)
and writes ``bench/results/NAME.json``: its inputs, the machine, every measurement and
the ratio, so a figure in bench/README.md can be traced to the numbers behind it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / ".work"  # datasets and scratch runs; .gitignore'd
ITER_TIMES_ENV = "YOLOR_BENCH_ITER_TIMES"  # where bench.iter_times writes (see that module)
TRAIN_CPUS_ENV = "YOLOR_BENCH_TRAIN_CPUS"  # cores bench.iter_times pins the training thread to ("1", "2,3")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def machine() -> dict:
    import torch

    info = dict(platform=platform.platform(), python=platform.python_version(), cpus=os.cpu_count(),
                torch=torch.__version__, cuda=torch.cuda.is_available())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                                     None)
    except OSError:
        pass
    return info


def write_result(name: str, payload: dict, folder: Path = RESULTS) -> Path:
    """``bench/results/NAME.json`` (or in ``folder``), whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    record = dict(benchmark=name, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  machine=machine(), **payload)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    log(f"wrote {path.relative_to(REPO)}")
    return path


def shapes(name: str, images: int, val_images: int, size: int, seed: int = 0) -> Path:
    """A shapes dataset under bench/.work, generated once per settings."""
    from yolor_ray.data.shapes import ShapesSpec, make_shapes

    root = WORK / f"shapes-{name}-{images}-{val_images}-{size}-{seed}"
    if not (root / "annotations" / "instances_val.json").is_file():
        make_shapes(root, ShapesSpec(num_train=images, num_val=val_images, seed=seed, image_size=size),
                    overwrite=True)
    return root


def child_env(threads: int, times_file: Path | None = None) -> dict:
    """Environment of a measured child process: the same thread counts for every
    variant, ``bench`` importable (Ray's local workers inherit it), timings' file."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if times_file is not None:
        env[ITER_TIMES_ENV] = str(times_file)
    return env


def positive_int(text: str) -> int:
    """argparse type: an int >= 1 (0 pairs or 0 images would fail only after minutes of runs)."""
    try:
        value = int(text)
    except ValueError:
        value = 0  # reported below, with the text as given
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def add_timed_training_options(parser: argparse.ArgumentParser, *, pairs: int, pairs_of: str, images: int,
                               warmup: int) -> None:
    """The options of the benches that time ``yolor-ray train`` runs in interleaved pairs."""
    parser.add_argument("--pairs", type=positive_int, default=pairs,
                        help=f"interleaved {pairs_of} pairs (default {pairs})")
    parser.add_argument("--images", type=positive_int, default=images,
                        help=f"training images, one epoch (default {images})")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=positive_int, default=2, help="images per worker per iteration")
    parser.add_argument("--warmup", type=int, default=warmup, help="iterations left out at the start of each run")


def fresh_scratch(name: str) -> Path:
    """``bench/.work/NAME``, emptied: a benchmark's runs and logs."""
    scratch = WORK / name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    return scratch


def alternate(index: int, variants: tuple) -> tuple:
    """The variants in order for even repetitions, reversed for odd: interleaving that
    cancels drift and the cost of going first."""
    return variants if index % 2 == 0 else variants[::-1]


def run_child(args: list[str], env: dict, log_file: Path, cpus: set[int] | None = None) -> float:
    """Run a measured command, output to ``log_file``; returns its wall time. Fails loudly.
    ``cpus``: the cores the child and everything it starts may run on (unless they move)."""
    start = time.perf_counter()
    with open(log_file, "w") as out:
        proc = subprocess.run(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                              preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log_file.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {proc.returncode} after {elapsed:.0f} s; "
                           f"log {log_file}:\n{tail}")
    return elapsed


@dataclass(frozen=True)
class TimedRun:
    launched: float  # perf_counter at launch: the system-wide monotonic clock, comparable across processes
    wall_s: float
    stamps: dict  # bench.iter_times' record: per-epoch iteration stamps, world size, CPU profile

    @property
    def startup_s(self) -> float:
        """Launch to the start of the first training epoch."""
        return self.stamps["epochs"][0][0] - self.launched


def timed_run(command: list[str], threads: int, scratch: Path, name: str,
              pin: tuple[set[int], set[int]] | None = None, extra_env: dict | None = None) -> TimedRun:
    """Run a training child with bench.iter_times' hook recording to ``scratch/NAME.times.json``.
    ``pin``: (the cores of every process of the run, the cores its training thread moves to)."""
    times = scratch / f"{name}.times.json"
    env = child_env(threads, times)
    env.update(extra_env or {})
    if pin is not None:
        env[TRAIN_CPUS_ENV] = ",".join(map(str, sorted(pin[1])))
    launched = time.perf_counter()
    wall = run_child(command, env, scratch / f"{name}.log", cpus=pin[0] if pin else None)
    return TimedRun(launched, wall, json.loads(times.read_text()))


def train_args(config: Path, data: Path, *, image_size: int, batch_size: int, epochs: int, num_workers: int,
               threads: int, storage: Path, name: str) -> list[str]:
    """``yolor-ray train`` (the CLI, in a child process) of a small from-scratch run."""
    return [sys.executable, "-m", "yolor_ray.cli", "train", str(config), "--data", str(data), "--small",
            "--image-size", str(image_size), "--batch-size", str(batch_size), "--epochs", str(epochs),
            "--num-workers", str(num_workers), "--cpus-per-worker", str(threads), "--storage", str(storage),
            "--name", name, "--samples", "0", "--keep-checkpoints", "1"]


def iteration_seconds(stamps: dict, warmup: int) -> list[float]:
    """Seconds per training iteration from bench.iter_times' stamps: differences within
    an epoch (the gap across validation is not an iteration), the first ``warmup``
    iterations of the run left out."""
    durations = []
    for epoch in stamps["epochs"]:
        durations += [b - a for a, b in zip(epoch, epoch[1:])]
    if len(durations) <= warmup:
        raise RuntimeError(f"{len(durations)} iterations timed, need more than the {warmup} of warm-up")
    return durations[warmup:]


def summary(values: list[float]) -> dict:
    return dict(n=len(values), mean=statistics.fmean(values), median=statistics.median(values),
                stdev=statistics.stdev(values) if len(values) > 1 else 0.0, min=min(values), max=max(values))


def ratio_summary(ratios: list[float]) -> dict:
    """A ratio measured in several interleaved pairs: its mean, spread and range."""
    return dict(pairs=[round(r, 4) for r in ratios], mean=statistics.fmean(ratios),
                stdev=statistics.stdev(ratios) if len(ratios) > 1 else 0.0, min=min(ratios), max=max(ratios))
