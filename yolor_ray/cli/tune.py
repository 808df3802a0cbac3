"""``yolor-ray tune``: a Ray Tune sweep over implicit variants, then its leaderboard."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from yolor_ray.cli.arguments import (
    add_resolution_arguments,
    add_train_arguments,
    check_run_paths,
    parse_argv,
    resolution_from_args,
    run_settings_from_args,
)
from yolor_ray.cli.running import hold_library_warnings, print_dry_run, raise_if_missing, save_held_warnings
from yolor_ray.layout import (
    BEST_CONFIG,
    CONFIRMATION_FILE,
    CONFIRMATION_PNG,
    LEADERBOARD_FILE,
    LEADERBOARD_MD,
    RUNS_DIR,
    TRIALS_PNG,
)

if TYPE_CHECKING:
    from yolor_ray.tune.spec import SweepSpec

HELP = "search implicit placements / modeling / init with Ray Tune (ASHA)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``yolor-ray tune``'s arguments (also ``jobs/tune.py``'s): the train ones, plus the sweep's."""
    add_train_arguments(parser)
    group = parser.add_argument_group("sweep (--name names the sweep; each trial is one run with the options above)")
    group.add_argument("--space", metavar="FILE", help="search space, YAML or Python (`space = dict(...)`); "
                       "format in docs/tune.md. Default: fpn / pred / fpn+pred x vector / mf x init std")
    group.add_argument("--placements", nargs="+", metavar="SUBSET", help="placement subsets to search, e.g. "
                       "fpn pred fpn+pred (overrides the file's)")
    group.add_argument("--modeling", nargs="+", help="modelings to search: vector nn mf (overrides the file's)")
    group.add_argument("--lr", nargs="+", type=float, help="learning rates to search (the config's LR before "
                       "auto_scale_lr; overrides the file's)")
    group.add_argument("--trials", type=int, default=8, help="trials to sample, distinct variants (default 8; a "
                       "grid runs each variant once, and so does a --trials at or above their number)")
    group.add_argument("--search", default="auto", choices=("auto", "random", "grid", "optuna"),
                       help="how variants are picked (default auto: Optuna when installed, else random)")
    group.add_argument("--metric", default="coco/bbox_mAP", help="what ASHA and the leaderboard rank by "
                       "(default coco/bbox_mAP)")
    group.add_argument("--mode", default="max", choices=("max", "min"), help="max or min of --metric (default max)")
    group.add_argument("--grace-period", type=int, default=1, help="epochs before ASHA may stop a trial (default 1)")
    group.add_argument("--reduction-factor", type=int, default=2, help="ASHA keeps 1/this at each rung (default 2)")
    group.add_argument("--max-concurrent", type=int, help="trials at a time (default: as many as the cluster holds)")
    group.add_argument("--fixed-cluster", action="store_true", help="the cluster cannot grow (no autoscaler): "
                       "run at most as many trials at a time as fit now, else trial actors could hold the CPUs "
                       "their own workers wait for (always so on the private local Ray)")
    group.add_argument("--no-early-stopping", dest="early_stopping", action="store_false",
                       help="no ASHA: every trial runs all its epochs (an exhaustive sweep, with --search grid)")
    group.add_argument("--confirm", type=int, default=0, metavar="K", help="after the sweep, train the top K "
                       "variants and the baseline again with --seeds seeds each and compare them (paired t intervals; "
                       "docs/tune.md)")
    group.add_argument("--seeds", type=int, help="seeds per confirmed variant and the baseline (default 2); with "
                       "--resolution, the pilot's (default 3)")
    add_resolution_arguments(group)
    # --trainer-trials: the option's name before it took reproduce's name for the same thing
    group.add_argument("--trainer-runs", "--trainer-trials", dest="trainer_runs", action="store_true",
                       help="every trial and --confirm run a TorchTrainer run, 1-worker ones too (by default "
                       "those train in their Tune actor: docs/tune.md)")


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep of parsed ``yolor-ray tune`` arguments (the space file, if any, is read here)."""
    from yolor_ray.resolution import MIN_PILOT
    from yolor_ray.tune.space_parse import DEFAULT_SPACE, load_space_file  # deferred: Ray Tune, torch
    from yolor_ray.tune.spec import SweepSpec

    space = load_space_file(args.space) if args.space else {}
    if args.placements:
        space["placements"] = [item.replace(",", "+").split("+") for item in args.placements]
    if args.modeling:
        space["modeling"] = args.modeling
    if args.lr:
        space["lr"] = args.lr
    if not args.space and not (args.placements or args.modeling or args.lr):
        space = DEFAULT_SPACE
    return SweepSpec(config=Path(args.config), train=run_settings_from_args(args), space=space, name=args.name,
                     trials=args.trials, search=args.search, metric=args.metric, mode=args.mode,
                     grace_period=args.grace_period, reduction_factor=args.reduction_factor,
                     max_concurrent=args.max_concurrent, early_stopping=args.early_stopping,
                     fixed_cluster=args.fixed_cluster, trainer_runs=args.trainer_runs, confirm=args.confirm,
                     seeds=args.seeds or (MIN_PILOT if args.resolution is not None else 2),
                     resolution=resolution_from_args(args))


def spec_from_argv(argv: Sequence[str]) -> SweepSpec:
    """The sweep ``yolor-ray tune ARGV`` would run (``argv`` without the word ``tune``); nothing is
    started and nothing but a ``--space`` file is read."""
    return spec_from_args(parse_argv("yolor-ray tune", add_arguments, argv))


def run(args: argparse.Namespace) -> int:
    """Run a sweep, then print its leaderboard and where everything is."""
    check_run_paths(args)
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.tune.describe import describe_sweep  # deferred: Ray Tune, torch, mmdet
    from yolor_ray.tune.leaderboard import format_leaderboard
    from yolor_ray.tune.sweep import prepare_sweep, run_sweep

    if args.dry_run:
        return print_dry_run(describe_sweep(prepare_sweep(spec_from_args(args))), args.dry_run)
    board = run_sweep(spec_from_args(args))
    save_held_warnings(held, args, board.sweep)
    print("\n" + format_leaderboard(board))
    print(f"sweep: {board.location}/{LEADERBOARD_FILE}\n       beside it: {LEADERBOARD_MD}, {TRIALS_PNG}, "
          f"{BEST_CONFIG}" + (f", {CONFIRMATION_FILE}, {CONFIRMATION_PNG}" if board.confirmation else "")
          + f"; every trial's run under {RUNS_DIR}/")
    if board.confirmation is not None:
        raise_if_missing(board.confirmation.missing, len(board.confirmation.runs), "--confirm")
    return 0
