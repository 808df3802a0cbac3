"""The arguments ``train``, ``tune`` and ``reproduce`` share (every training run's), turned into
:class:`~yolor_ray.train.spec.RunSettings` (with a config and a name: a ``TrainSpec``), and the
local paths among them checked early."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

from yolor_ray import paths
from yolor_ray.data.coco import DATA_HINT, IMAGE_SAMPLE
from yolor_ray.errors import UserError


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
    parser.add_argument("--image-size", type=int, default=256,
                        help="image scale with --small (64 to 1333, default 256)")
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
                        "before the run fails (default 3); a storage fault (full disk, denied bucket) ends it at once")
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
    parser.add_argument("--coco-eval", default="faster", metavar="{faster,pycocotools}", help="validation's COCO "
                        "evaluation: faster-coco-eval's COCOeval (default; the same stats as pycocotools', faster; "
                        "pycocotools' when it is not installed) or pycocotools' (as MMDetection's CocoMetric)")
    parser.add_argument("--tracker", action="append", default=[], choices=("mlflow", "wandb"),
                        help="also log to this experiment tracker (repeatable; TensorBoard files are always "
                        "written): mlflow reads MLFLOW_TRACKING_URI (required, e.g. sqlite:///mlflow.db) and "
                        "MLFLOW_EXPERIMENT_NAME; wandb reads WANDB_PROJECT, WANDB_MODE, WANDB_DIR and its own "
                        "WANDB_API_KEY (never read or logged by us). pip install 'yolor-ray[trackers]'")
    parser.add_argument("--verbose", action="store_true", help="stream every worker's raw output (MMEngine's "
                        "log, evaluation tables, warnings) and, with tune and reproduce, Ray Tune's status tables "
                        "to this terminal; by default the output goes to each run's log files and the driver prints "
                        "one line per epoch (tune, reproduce: each run's start, epochs and end, and a status line)")
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


def add_resolution_arguments(group) -> None:
    """Seeds on demand (``resolution.Resolution``): ``reproduce``'s and ``tune --confirm``'s, whose
    ``--seeds`` becomes the pilot."""
    group.add_argument("--resolution", type=float, metavar="H", help="run each comparison to a 95%% interval "
                       "of half-width H AP points: --seeds is the pilot, which fixes how many seeds in all "
                       "(Stein's two-stage procedure; docs/reproduce.md)")
    group.add_argument("--max-seeds", type=int, metavar="N", help="with --resolution: at most N seeds per arm "
                       "(default 20); raise it later under the same --name to run what a capped comparison lacks")
    group.add_argument("--assume-sd", type=float, metavar="S", help="with --dry-run --resolution: price the plan "
                       "for paired differences of sd S AP points")
    group.add_argument("--prior", metavar="NAME_OR_PATH", help="with --dry-run --resolution: price the plan for "
                       "the paired sd per row measured by an earlier reproduction or sweep confirmation")


def resolution_from_args(args: argparse.Namespace):
    """``--resolution``, ``--max-seeds``, ``--assume-sd``, ``--prior`` as a spec part."""
    from yolor_ray.resolution import DEFAULT_MAX_SEEDS, Resolution

    if (args.assume_sd is not None or args.prior is not None) and not args.dry_run:
        raise UserError("--assume-sd and --prior price a plan: add --dry-run")
    if args.max_seeds is not None and args.resolution is None:
        raise UserError("--max-seeds caps the seeds of --resolution H: add --resolution")
    return Resolution(target=args.resolution, max_seeds=DEFAULT_MAX_SEEDS if args.max_seeds is None else args.max_seeds,
                      assume_sd=args.assume_sd, prior=args.prior)


def parse_argv(prog: str, add_arguments: Callable[[argparse.ArgumentParser], None],
               argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed as one command's arguments (``prog``: the command, for its usage line)."""
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    return parser.parse_args(list(argv))


def run_settings_from_args(args: argparse.Namespace):
    """The run settings of ``args`` that every run of a command shares (all but the config and the name)."""
    from yolor_ray.config.load import parse_cfg_options  # deferred: imports torch (the implicit model's settings)
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.spec import Checkpointing, RunSettings, Scaling, Trackers, warm_start_of
    from yolor_ray.train.trackers import tracker_settings

    return RunSettings(
        data_root=Path(args.data) if args.data else None, small=args.small, image_size=args.image_size,
        epochs=args.epochs, batch_size=args.batch_size, check_all_images=args.check_all_images, address=args.address,
        cfg_options=parse_cfg_options(args.cfg_options), seed=args.seed, num_samples=args.samples,
        load_from=args.load_from, deterministic=args.deterministic, amp=args.amp, verbose=args.verbose,
        coco_eval=args.coco_eval,
        scaling=Scaling(num_workers=args.num_workers, use_gpu=args.gpu, cpus_per_worker=args.cpus_per_worker,
                        worker_resources=parse_worker_resources(args.worker_resources)),
        storage=StorageSpec(args.storage, args.s3_endpoint),
        checkpoints=Checkpointing(interval=args.checkpoint_interval, keep=args.keep_checkpoints,
                                  max_failures=args.max_failures),
        trackers=Trackers(tuple(args.tracker), tracker_settings() if args.tracker else {}),
        warm_start=warm_start_of(getattr(args, "from_baseline", None), getattr(args, "train_params", "all"),
                                 getattr(args, "finetune_lr_factor", 0.1)))


def train_spec_from_args(args: argparse.Namespace):
    """The run of ``args``: its settings, its config and its name."""
    return run_settings_from_args(args).for_run(Path(args.config), args.name)


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
