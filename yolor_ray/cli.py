"""The ``yolor-ray`` command: make-shapes, train, tune, reproduce, table, pull, cluster check, fuse.

A :class:`~yolor_ray.errors.UserError` (what was wrong, what was received, what is
valid) is printed as one line with exit status 2; a training run that fails for good
exits with 1 and says how to resume; anything else is a bug and keeps its traceback.

Each command imports what it needs when it runs (deferred imports below, each marked):
``--help``, ``table``, ``pull`` and ``cluster check`` import neither torch nor mmdet.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from yolor_ray import paths
from yolor_ray.data.coco import DATA_HINT, IMAGE_SAMPLE
from yolor_ray.errors import RunFailedError, UserError
from yolor_ray.layout import (
    BEST_CONFIG,
    DRIVER_WARNINGS,
    LEADERBOARD_FILE,
    LEADERBOARD_MD,
    LOGS_DIR,
    REPRODUCTION_FILE,
    REPRODUCTION_MD,
    RESULTS_FILE,
    RUNS_DIR,
    TRIALS_PNG,
)
from yolor_ray.metrics import format_ap_table, format_per_class_table


def add_train_arguments(parser: argparse.ArgumentParser, one_config: bool = True) -> None:
    """Arguments shared by ``yolor-ray train`` and ``jobs/train.py`` (and, without the config and
    the warm start, ``one_config=False``, by ``reproduce``: each of its runs has its row's config)."""
    if one_config:
        parser.add_argument("config", help="MMDetection config file, e.g. configs/baseline/atss_r50_fpn_1x_coco.py")
    parser.add_argument("--data", metavar="DIR", help="COCO-layout folder (annotations/instances_{train,val}.json, "
                        "train/, val/); overrides the config's dataset and classes")
    parser.add_argument("--check-all-images", action="store_true", help="before training, look for every image "
                        f"file of --data (default: a sample of {IMAGE_SAMPLE} per split, plus the file count)")
    parser.add_argument("--small", action="store_true", help="ResNet-18 backbone from scratch, one image scale, "
                        "single-process data loading: any family trains on a CPU")
    parser.add_argument("--image-size", type=int, default=256, help="image scale with --small (default 256)")
    parser.add_argument("--epochs", type=int, help="override train_cfg.max_epochs (LR steps move with it)")
    parser.add_argument("--batch-size", type=int, help="images per worker (the LR scales with the total batch "
                        "when auto_scale_lr is on, as with --small)")
    parser.add_argument("--num-workers", type=int, default=1, help="Ray Train workers (processes; default 1)")
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL); default CPU (gloo)")
    parser.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs (and torch threads) per worker")
    parser.add_argument("--worker-resources", nargs="+", default=[], metavar="NAME=AMOUNT",
                        help="custom Ray resources each worker also reserves, e.g. a10g=1 (nodes started with "
                        "--resources '{\"a10g\": 1}'): decides which nodes run workers")
    parser.add_argument("--storage", default="./results", help="where runs land: a folder or s3://bucket/prefix "
                        "(default ./results; S3 credentials from the standard AWS chain)")
    parser.add_argument("--s3-endpoint", metavar="URL", help="custom S3 endpoint, e.g. http://127.0.0.1:9000 "
                        "(default: AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--name", help="run name (default: CONFIG-STEM-DATE-TIME); an unfinished run of the same "
                        "name and config resumes from its last checkpoint" if one_config else "the reproduction's "
                        "name (default: reproduce-DATE-TIME); the same name again reuses its done runs, resumes "
                        "the unfinished and retrains the failed")
    parser.add_argument("--checkpoint-interval", type=int, default=1, help="epochs between checkpoints (default 1)")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept: the best K by bbox mAP "
                        "(a sweep's trials: by --metric and --mode), plus the latest (default 2)")
    parser.add_argument("--max-failures", type=int, default=3, help="worker-group restarts from the last checkpoint "
                        "before the run fails (default 3)")
    parser.add_argument("--address", help="Ray cluster to use (default: RAY_ADDRESS, else a private local Ray)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0; MMEngine's randomness.seed)"
                        if one_config else "the first seed: runs train at SEED .. SEED + --seeds - 1 (default 0)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic algorithms "
                        "(MMEngine's randomness.deterministic; slower)")
    parser.add_argument("--load-from", metavar="PATH|s3://BUCKET/KEY", help="start from this checkpoint's weights "
                        "(an MMEngine / mmdet checkpoint, e.g. a baseline for its YOLOR variant); loaded with an "
                        "allow-list, keys compared with the model before Ray starts")
    if one_config:
        add_warm_start_arguments(parser)
    parser.add_argument("--amp", nargs="?", const="fp16", choices=("fp16", "bf16"), help="mixed precision: "
                        "--amp is fp16 (GPU, MMEngine's AmpOptimWrapper), --amp bf16 also works on CPU")
    parser.add_argument("--dry-run", nargs="?", const="-", metavar="FILE", help="run every check, print what "
                        "would run and the merged config (to FILE if given), write nothing, exit 0" if one_config
                        else "run every check, print the plan and its cost estimate (also to FILE if given), "
                        "write nothing, exit 0")
    parser.add_argument("--tracker", action="append", default=[], choices=("mlflow", "wandb"),
                        help="also log to this experiment tracker (repeatable; TensorBoard files are always "
                        "written): mlflow reads MLFLOW_TRACKING_URI (required, e.g. sqlite:///mlflow.db) and "
                        "MLFLOW_EXPERIMENT_NAME; wandb reads WANDB_PROJECT, WANDB_MODE, WANDB_DIR and its own "
                        "WANDB_API_KEY (never read or logged by us). pip install 'yolor-ray[trackers]'")
    parser.add_argument("--verbose", action="store_true", help="stream every worker's raw output (MMEngine's "
                        "log, evaluation tables, warnings) to this terminal; by default it goes to the run's "
                        "log files and the driver prints one line per epoch")
    parser.add_argument("--samples", type=int, default=4, help="validation images drawn in samples.png (default 4)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. optim_wrapper.optimizer.lr=0.01; applied last, so they win "
                        "over --small, --epochs, --batch-size, --seed. A key must exist, or be new under an existing "
                        "dict (optim_wrapper.accumulative_counts=2) and not look like a typo of a key beside it")


def add_warm_start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_baseline", metavar="BASELINE", help="warm start: fine-tune from a "
                        "trained baseline (a finished run folder, local or s3://, or a checkpoint file); implicit "
                        "parameters keep their init, so a YOLOR variant starts as the baseline (docs/tune.md)")
    parser.add_argument("--train", dest="train_params", default="all", choices=("all", "implicit"),
                        help="with --from: fine-tune every parameter (default) or the implicit ones alone")
    parser.add_argument("--finetune-lr-factor", type=float, default=0.1, help="with --from: the fine-tuning LR "
                        "is the config's x this (default 0.1), constant, no warm-up; --cfg-options win")


def train_spec_from_args(args: argparse.Namespace, config: Path | None = None):
    """The run settings of ``args``; ``config``: the run's config file when ``args`` names none (reproduce)."""
    from yolor_ray.config import parse_cfg_options  # deferred: imports torch (the implicit model's settings)
    from yolor_ray.train.spec import TrainSpec
    from yolor_ray.train.trackers import tracker_settings

    return TrainSpec(
        config=config or Path(args.config), data_root=Path(args.data) if args.data else None, small=args.small,
        image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, num_workers=args.num_workers,
        use_gpu=args.gpu, cpus_per_worker=args.cpus_per_worker, storage=args.storage, s3_endpoint=args.s3_endpoint,
        worker_resources=parse_worker_resources(args.worker_resources), check_all_images=args.check_all_images,
        name=args.name, address=args.address, cfg_options=parse_cfg_options(args.cfg_options), seed=args.seed,
        num_samples=args.samples, checkpoint_interval=args.checkpoint_interval,
        keep_checkpoints=args.keep_checkpoints, max_failures=args.max_failures, load_from=args.load_from,
        deterministic=args.deterministic, amp=args.amp, trackers=tuple(args.tracker),
        tracker_env=tracker_settings() if args.tracker else {}, verbose=args.verbose,
        from_baseline=getattr(args, "from_baseline", None), train_params=getattr(args, "train_params", "all"),
        finetune_lr_factor=getattr(args, "finetune_lr_factor", 0.1))


def parse_worker_resources(items: list[str]) -> dict[str, float]:
    return parse_named_numbers(items, "--worker-resources", "NAME=AMOUNT", "a10g=1")


def parse_named_numbers(items: list[str], option: str, form: str, example: str) -> dict[str, float]:
    """``NAME=NUMBER`` entries of an option to a dict (one line naming the form for a bad one)."""
    numbers = {}
    for item in items:
        name, _, number = item.partition("=")
        try:
            numbers[name] = float(number)
        except ValueError:
            name = ""
        if not name:
            raise UserError(f"{option} entries look like {form} (e.g. {example}), got {item!r}")
    return numbers


class HeldWarnings(logging.Handler):
    """Python warnings of the driver (libraries' deprecations), held to be written into the
    run's storage instead of the terminal."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().rstrip())


def hold_library_warnings(verbose: bool) -> HeldWarnings | None:
    """Unless --verbose, warnings go to a HeldWarnings (call before the heavy imports)."""
    if verbose:
        return None
    held = HeldWarnings()
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.addHandler(held)
    warnings_log.propagate = False
    return held


def save_held_warnings(held: HeldWarnings | None, args: argparse.Namespace, *folder: str) -> None:
    """The driver's held warnings into ``folder/logs/driver_warnings.log`` in storage."""
    if held is None or not held.lines:
        return
    from yolor_ray.storage import StorageSpec, open_storage  # deferred: boto3 for s3://

    text = "\n".join(held.lines) + "\n"
    open_storage(StorageSpec(args.storage, args.s3_endpoint)).write_bytes(text.encode(), *folder, LOGS_DIR,
                                                                        DRIVER_WARNINGS)


def check_run_paths(args: argparse.Namespace) -> None:
    """Every local path ``train`` and ``tune`` take, checked before the heavy imports
    (:mod:`yolor_ray.paths`): a wrong one fails at once, before Ray starts and before anything
    is written. What the files hold is checked where they are read; ``s3://`` where it is opened."""
    if getattr(args, "config", None):
        paths.read_text(args.config, "config file")
    if args.data:
        paths.input_folder(args.data, "dataset folder", hint=DATA_HINT)
    if getattr(args, "space", None):
        paths.read_text(args.space, "--space file")
    if args.load_from and "://" not in args.load_from:
        paths.input_file(Path(args.load_from).expanduser(), "--load-from checkpoint")
    if getattr(args, "from_baseline", None) and "://" not in args.from_baseline:
        paths.input_file_or_folder(Path(args.from_baseline).expanduser(), "--from")
    if "://" not in args.storage:
        paths.output_folder(Path(args.storage).expanduser(), "--storage folder")
    if args.dry_run and args.dry_run != "-":
        paths.output_file(args.dry_run, "--dry-run FILE")  # replaced if it is there


def run_train(args: argparse.Namespace) -> int:
    """Train, then print the AP table and where everything is."""
    check_run_paths(args)
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.train.driver import run_training  # deferred: torch, mmdet, Ray
    from yolor_ray.train.prepare import describe_run, prepare_run

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


def print_dry_run(plan: tuple[str, str], config_out: str) -> int:
    """``--dry-run``: the plan on stdout; the merged config on stdout ('-') or to a file."""
    summary, config_text = plan
    print(summary)
    if config_out == "-":
        print("\n# merged config\n" + config_text)
    else:
        Path(config_out).write_text(config_text, encoding="utf-8")
        print(f"merged config: {config_out}")
    return 0


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``yolor-ray tune`` and ``jobs/tune.py``: the train ones, plus the sweep's."""
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
    group.add_argument("--seeds", type=int, default=2, help="seeds per confirmed variant and the baseline (default 2)")
    group.add_argument("--trainer-trials", action="store_true", help="every trial a TorchTrainer run, 1-worker "
                       "ones too (by default those train in the trial's own process: docs/tune.md)")


def sweep_spec_from_args(args: argparse.Namespace):
    from yolor_ray.tune.space import DEFAULT_SPACE, load_space_file  # deferred: Ray Tune, torch
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
    train = dataclasses.replace(train_spec_from_args(args), name=None)
    return SweepSpec(train=train, space=space, name=args.name, trials=args.trials, search=args.search,
                     metric=args.metric, mode=args.mode, grace_period=args.grace_period,
                     reduction_factor=args.reduction_factor, max_concurrent=args.max_concurrent,
                     early_stopping=args.early_stopping, fixed_cluster=args.fixed_cluster,
                     trainer_runs=args.trainer_trials, confirm=args.confirm, seeds=args.seeds)


def run_tune(args: argparse.Namespace) -> int:
    """Run a sweep, then print its leaderboard and where everything is."""
    check_run_paths(args)
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.tune.leaderboard import format_leaderboard  # deferred: Ray Tune, torch, mmdet
    from yolor_ray.tune.sweep import describe_sweep, prepare_sweep, run_sweep

    if args.dry_run:
        return print_dry_run(describe_sweep(prepare_sweep(sweep_spec_from_args(args))), args.dry_run)
    board = run_sweep(sweep_spec_from_args(args))
    save_held_warnings(held, args, board.sweep)
    print("\n" + format_leaderboard(board))
    print(f"sweep: {board.location}/{LEADERBOARD_FILE}\n       beside it: {LEADERBOARD_MD}, {TRIALS_PNG}, "
          f"{BEST_CONFIG}; every trial's run under {RUNS_DIR}/")
    if board.confirmation is not None:
        raise_if_missing(board.confirmation.missing, len(board.confirmation.runs), "--confirm")
    return 0


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``yolor-ray reproduce`` and ``jobs/reproduce.py``: the train ones
    (every run's), plus the reproduction's."""
    from yolor_ray.reference import REFERENCE_ROWS

    add_train_arguments(parser, one_config=False)
    group = parser.add_argument_group("reproduction (each run is one training run with the options above)")
    group.add_argument("--rows", nargs="+", choices=tuple(REFERENCE_ROWS), default=list(REFERENCE_ROWS), metavar="ROW",
                       help=f"the reference table's rows to train (default all six: {' '.join(REFERENCE_ROWS)})")
    group.add_argument("--seeds", type=int, default=3, help="seeds per row and arm (default 3; at least 2 for a "
                       "paired interval)")
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


def reproduce_spec_from_args(args: argparse.Namespace):
    from yolor_ray.config import parse_cfg_options  # deferred: imports torch
    from yolor_ray.reference import baseline_config
    from yolor_ray.reproduce.spec import ReproduceSpec

    train = dataclasses.replace(train_spec_from_args(args, config=baseline_config(args.rows[0])), name=None)
    return ReproduceSpec(train=train, rows=tuple(args.rows), seeds=args.seeds, name=args.name,
                         yolor_options=parse_cfg_options(args.yolor_options), max_concurrent=args.max_concurrent,
                         fixed_cluster=args.fixed_cluster, trainer_runs=args.trainer_runs, calibrate=args.calibrate,
                         seconds_per_iter=parse_named_numbers(args.seconds_per_iter, "--seconds-per-iter",
                                                                          "ROW=SECONDS", "atss=0.22"))


def run_reproduce(args: argparse.Namespace) -> int:
    """Train the reference table's rows x baseline/YOLOR x seeds (or print the plan and its cost), then the table."""
    check_run_paths(args)
    if (args.calibrate or args.seconds_per_iter) and not args.dry_run:
        raise UserError("--calibrate and --seconds-per-iter estimate the cost of a plan: add --dry-run")
    held = hold_library_warnings(args.verbose or bool(args.dry_run))
    from yolor_ray.reproduce.dry_run import describe_reproduction  # deferred: torch, mmdet, Ray
    from yolor_ray.reproduce.launch import run_reproduction
    from yolor_ray.table import format_reproduction

    spec = reproduce_spec_from_args(args)
    if args.dry_run:
        text = describe_reproduction(spec)
        print(text)
        if args.dry_run != "-":
            Path(args.dry_run).write_text(text + "\n", encoding="utf-8")
        return 0
    reproduction = run_reproduction(spec)
    save_held_warnings(held, args, reproduction.name)
    print("\n" + format_reproduction(reproduction))
    print(f"reproduction: {reproduction.location}/{REPRODUCTION_FILE}\n              beside it: {REPRODUCTION_MD}; "
          f"every run under {RUNS_DIR}/")
    raise_if_missing(reproduction.missing, len(reproduction.runs), f"--name {reproduction.name}")
    return 0


def raise_if_missing(missing: list, planned: int, rerun: str) -> None:
    """A paired comparison (a reproduction, a confirmation) with runs that have no results: exit 1."""
    if missing:
        first = missing[0]
        raise RunFailedError(f"{len(missing)} of {planned} run(s) have no results (first: {first.arm} seed "
                             f"{first.seed}: {first.error}); the same command with {rerun} trains them again, the "
                             "others are reused")


def run_table(args: argparse.Namespace) -> int:
    """The reference-style table of the runs under a path; a reproduction's own table with its noise."""
    from yolor_ray.table import (  # deferred: boto3
        format_confirmation,
        format_reproduction,
        load_confirmations,
        load_records,
        load_reproductions,
        outside_reproductions,
        reference_table,
    )

    records = load_records(args.path, args.s3_endpoint)
    if not records:
        raise UserError(f"no {RESULTS_FILE} under {args.path!r}: point it at a results folder, a run or a sweep")
    reproductions = load_reproductions(args.path, args.s3_endpoint)
    for where, reproduction in reproductions:
        print(f"<!-- {where} -->\n" + format_reproduction(reproduction))
    single = outside_reproductions(records, [where for where, _ in reproductions])
    if single:
        print(reference_table(single).markdown)
    for where, confirmation in load_confirmations(args.path, args.s3_endpoint):
        print("\n" + "\n".join(format_confirmation(confirmation, title=f"{where}: confirmation")))
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from yolor_ray.pull import pull  # deferred: boto3 for s3://

    pulled = pull(args.source, args.dest, args.s3_endpoint)
    print(f"pulled {pulled.kind} {pulled.source}: {pulled.files} files, {pulled.bytes / 1e6:.1f} MB -> {pulled.dest}\n"
          f"tensorboard --logdir {pulled.dest}")
    return 0


def run_cluster_check(args: argparse.Namespace) -> int:
    """Validate a cluster.yaml with Ray's autoscaler schema and our rules (docs/cluster.md)."""
    from yolor_ray.cluster.check import check_cluster_config  # deferred: Ray's autoscaler schema

    print(check_cluster_config(args.file).summary())
    return 0


def run_make_shapes(args: argparse.Namespace) -> int:
    from yolor_ray.data.shapes import ShapesSpec, make_shapes  # deferred: numpy, PIL

    num_val = args.val_images if args.val_images is not None else max(16, args.images // 4)
    spec = ShapesSpec(num_train=args.images, num_val=num_val, seed=args.seed, image_size=args.size)
    out = make_shapes(args.dir, spec, overwrite=args.overwrite)
    print(f"wrote {spec.num_train} train + {spec.num_val} val images ({spec.image_size}px, seed {spec.seed}) to {out}")
    return 0


def run_fuse(args: argparse.Namespace) -> int:
    """Fold implicit knowledge into neighbouring layers for deploy (docs/implicit.md)."""
    paths.input_file_or_folder(args.checkpoint, "checkpoint")  # before the heavy imports, as fuse_checkpoint does
    if args.config:
        paths.read_text(args.config, "config file")
    paths.output_folder(args.out, "output folder")
    from yolor_ray.deploy.fuse import fuse_checkpoint  # deferred: torch, mmdet

    result = fuse_checkpoint(args.config, args.checkpoint, args.out)
    print(result.report.summary())
    print(f"deploy checkpoint: {result.checkpoint}\ndeploy config:     {result.config}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolor-ray", description="YOLOR implicit knowledge on MMDetection "
                                     "detectors, trained with Ray.")
    sub = parser.add_subparsers(dest="command", required=True)

    shapes = sub.add_parser("make-shapes", help="generate a seeded synthetic COCO dataset of shapes")
    shapes.add_argument("dir", help="output folder")
    shapes.add_argument("--images", type=int, default=256, help="training images (default 256)")
    shapes.add_argument("--val-images", type=int, help="validation images (default max(16, images/4))")
    shapes.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    shapes.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    shapes.add_argument("--overwrite", action="store_true", help="replace DIR if it holds anything")
    shapes.set_defaults(func=run_make_shapes)

    train = sub.add_parser("train", help="train a config with Ray Train and evaluate it")
    add_train_arguments(train)
    train.set_defaults(func=run_train)

    tune = sub.add_parser("tune", help="search implicit placements / modeling / init with Ray Tune (ASHA)")
    add_tune_arguments(tune)
    tune.set_defaults(func=run_tune)

    reproduce = sub.add_parser("reproduce", help="the reference table again: its rows x baseline/YOLOR x seeds, "
                               "with paired 95%% intervals and GPU-hours (docs/reproduce.md)")
    add_reproduce_arguments(reproduce)
    reproduce.set_defaults(func=run_reproduce)

    table = sub.add_parser("table", help="the reference-style AP table of stored runs and sweeps")
    table.add_argument("path", help="a results folder, a run or a sweep; local or s3://bucket/prefix")
    table.add_argument("--s3-endpoint", metavar="URL", help="custom S3 endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    table.set_defaults(func=run_table)

    pull = sub.add_parser("pull", help="copy a run's or a sweep's folder from its storage (s3:// or local) to a "
                          "local folder, e.g. for tensorboard --logdir")
    pull.add_argument("source", metavar="RUN_OR_SWEEP", help="the run or sweep folder, e.g. s3://bucket/prefix/NAME")
    pull.add_argument("dest", help="local folder (created; files already there are replaced)")
    pull.add_argument("--s3-endpoint", metavar="URL", help="custom S3 endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    pull.set_defaults(func=run_pull)

    cluster = sub.add_parser("cluster", help="autoscaling Ray cluster files (docs/cluster.md)")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    check = cluster_sub.add_parser("check", help="validate a cluster.yaml offline: Ray's autoscaler schema, GPU "
                                   "resources declared, no secrets, a storage location set")
    check.add_argument("file", help="the cluster file, e.g. cluster.yaml")
    check.set_defaults(func=run_cluster_check)

    fuse = sub.add_parser("fuse", help="fold a YOLOR checkpoint's implicit tensors into its conv/linear layers")
    fuse.add_argument("checkpoint", help="a .pth file or a Ray checkpoint folder (STORAGE/NAME/checkpoint_*)")
    fuse.add_argument("out", help="output folder: deploy.pth, deploy.py, fuse_report.json")
    fuse.add_argument("--config", help="the YOLOR config (default: the one stored in the checkpoint)")
    fuse.set_defaults(func=run_fuse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    return run_guarded(args.func, args)


def configure_logging() -> None:
    """Our progress at INFO; libraries' chatter (boto's credential lookups) only from WARNING."""
    logging.basicConfig(level=logging.WARNING, format="[yolor-ray] %(message)s")
    logging.getLogger("yolor_ray").setLevel(logging.INFO)


def run_guarded(func, args) -> int:
    """Run a command; a UserError becomes one line on stderr and exit status 2."""
    try:
        return func(args)
    except UserError as err:
        print(f"yolor-ray: error: {err}", file=sys.stderr)
        return 2
    except RunFailedError as err:
        print(f"yolor-ray: training failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("yolor-ray: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
