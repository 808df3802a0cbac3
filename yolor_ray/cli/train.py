"""``yolor-ray train``: one training run with Ray Train, then its AP table and where it landed."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from yolor_ray.cli.arguments import add_train_arguments, check_run_paths, parse_argv, train_spec_from_args
from yolor_ray.cli.running import hold_library_warnings, print_dry_run, save_held_warnings
from yolor_ray.layout import RESULTS_FILE
from yolor_ray.metrics import format_ap_table, format_per_class_table

if TYPE_CHECKING:
    from yolor_ray.train.spec import TrainSpec

HELP = "train a config with Ray Train and evaluate it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``yolor-ray train``'s arguments (also ``jobs/train.py``'s)."""
    add_train_arguments(parser)


def spec_from_argv(argv: Sequence[str]) -> TrainSpec:
    """The run ``yolor-ray train ARGV`` would train (``argv`` without the word ``train``); nothing
    is read from disk or started."""
    return train_spec_from_args(parse_argv("yolor-ray train", add_arguments, argv))


def run(args: argparse.Namespace) -> int:
    """Train, then print the AP table and where everything is."""
    check_run_paths(args)
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.train.describe import describe_run
    from yolor_ray.train.driver import run_training  # deferred: torch, mmdet, Ray
    from yolor_ray.train.prepare import prepare_run

    if args.dry_run:
        return print_dry_run(describe_run(prepare_run(train_spec_from_args(args))), args.dry_run)
    record = run_training(train_spec_from_args(args))
    save_held_warnings(held, args, record.name)
    restarts = f", {record.restarts} restart(s)" if record.restarts else ""
    variant = " + YOLOR" if record.is_yolor else ""
    print(f"\n{record.model}{variant} ({Path(record.config).name}), {record.epochs} epochs on "
          f"{record.world_size} worker(s), {record.wall_time_s:.0f} s{restarts}\n")
    print(format_ap_table(record.metrics))
    if record.per_class_ap:
        print("\n" + format_per_class_table(record.per_class_ap))
    print(f"\nresults: {record.location}/{RESULTS_FILE}\n         beside it: {', '.join(record.artifacts)}")
    return 0
