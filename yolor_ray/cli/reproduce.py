"""``yolor-ray reproduce``: the reference table's rows x baseline/YOLOR x seeds as training runs
(or the plan and its cost), then the table with paired intervals."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from yolor_ray.cli.arguments import (
    add_resolution_arguments,
    add_train_arguments,
    check_run_paths,
    parse_argv,
    parse_named_numbers,
    resolution_from_args,
    run_settings_from_args,
)
from yolor_ray.cli.running import hold_library_warnings, raise_if_missing, save_held_warnings
from yolor_ray.errors import UserError
from yolor_ray.layout import REPRODUCTION_FILE, REPRODUCTION_MD, REPRODUCTION_PNG, RUNS_DIR

if TYPE_CHECKING:
    from yolor_ray.reproduce.spec import ReproduceSpec

HELP = ("the reference table again: its rows x baseline/YOLOR x seeds, with paired 95%% intervals and GPU-hours "
        "(docs/reproduce.md)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``yolor-ray reproduce``'s arguments (also ``jobs/reproduce.py``'s): the train ones (every
    run's), plus the reproduction's."""
    from yolor_ray.reference import REFERENCE_ROWS

    add_train_arguments(parser, one_config=False)
    group = parser.add_argument_group("reproduction (each run is one training run with the options above)")
    group.add_argument("--rows", nargs="+", choices=tuple(REFERENCE_ROWS), default=list(REFERENCE_ROWS), metavar="ROW",
                       help=f"the reference table's rows to train (default all six: {' '.join(REFERENCE_ROWS)})")
    group.add_argument("--seeds", type=int, default=3, help="seeds per row and arm (default 3; at least 2 for a "
                       "paired interval); with --resolution, the pilot's (at least 3)")
    add_resolution_arguments(group)
    group.add_argument("--yolor-options", nargs="+", default=[], metavar="KEY=VALUE", help="--cfg-options of the "
                       "YOLOR runs alone, e.g. model.implicit.init.multiply.std=0.05")
    group.add_argument("--max-concurrent", type=int, help="runs at a time (default: as many as the cluster holds)")
    group.add_argument("--fixed-cluster", action="store_true", help="the cluster cannot grow (no autoscaler): run "
                       "at most as many runs at a time as fit now (always so on the private local Ray)")
    group.add_argument("--trainer-runs", action="store_true", help="every run a TorchTrainer run, 1-worker ones "
                       "too (by default those train in their Tune actor, as a sweep's trials)")
    group.add_argument("--calibrate", type=int, default=0, metavar="N", help="with --dry-run: time N training "
                       "and N validation iterations of each row's configs on one worker of the cluster for the cost "
                       "estimate")
    group.add_argument("--seconds-per-iter", nargs="+", default=[], metavar="ROW=SECONDS", help="with --dry-run: "
                       "seconds per training iteration of each row for the cost estimate, e.g. atss=0.22 (measured "
                       "elsewhere; validation then not counted)")


def spec_from_args(args: argparse.Namespace) -> ReproduceSpec:
    """The reproduction of parsed ``yolor-ray reproduce`` arguments."""
    from yolor_ray.config.load import parse_cfg_options  # deferred: imports torch
    from yolor_ray.reproduce.spec import ReproduceSpec

    return ReproduceSpec(train=run_settings_from_args(args), rows=tuple(args.rows), seeds=args.seeds, name=args.name,
                         yolor_options=parse_cfg_options(args.yolor_options), max_concurrent=args.max_concurrent,
                         fixed_cluster=args.fixed_cluster, trainer_runs=args.trainer_runs, calibrate=args.calibrate,
                         seconds_per_iter=parse_named_numbers(args.seconds_per_iter, "--seconds-per-iter",
                                                              "ROW=SECONDS", "atss=0.22"),
                         resolution=resolution_from_args(args))


def spec_from_argv(argv: Sequence[str]) -> ReproduceSpec:
    """The reproduction ``yolor-ray reproduce ARGV`` would run (``argv`` without the word
    ``reproduce``); nothing is read from disk or started."""
    return spec_from_args(parse_argv("yolor-ray reproduce", add_arguments, argv))


def run(args: argparse.Namespace) -> int:
    """Train the reference table's rows x baseline/YOLOR x seeds (or print the plan and its cost), then the table."""
    check_run_paths(args)
    if (args.calibrate or args.seconds_per_iter) and not args.dry_run:
        raise UserError("--calibrate and --seconds-per-iter estimate the cost of a plan: add --dry-run")
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.reproduce.dry_run import describe_reproduction  # deferred: torch, mmdet, Ray
    from yolor_ray.reproduce.launch import run_reproduction
    from yolor_ray.table import format_reproduction

    spec = spec_from_args(args)
    if args.dry_run:
        text = describe_reproduction(spec)
        print(text)
        if args.dry_run != "-":
            Path(args.dry_run).write_text(text + "\n", encoding="utf-8")
        return 0
    reproduction = run_reproduction(spec)
    save_held_warnings(held, args, reproduction.name)
    print("\n" + format_reproduction(reproduction))
    print(f"reproduction: {reproduction.location}/{REPRODUCTION_FILE}\n              beside it: {REPRODUCTION_MD}, "
          f"{REPRODUCTION_PNG} (the forest plot); every run under {RUNS_DIR}/")
    raise_if_missing(reproduction.missing, len(reproduction.runs), f"--name {reproduction.name}")
    return 0
