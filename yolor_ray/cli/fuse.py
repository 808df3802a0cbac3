"""``yolor-ray fuse``: a YOLOR checkpoint's implicit tensors folded into its layers for deploy
(docs/implicit.md)."""
from __future__ import annotations

import argparse

from yolor_ray import paths

HELP = "fold a YOLOR checkpoint's implicit tensors into its conv/linear layers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a .pth file or a Ray checkpoint folder (STORAGE/NAME/checkpoint_*)")
    parser.add_argument("out", help="output folder: deploy.pth, deploy.py, fuse_report.json")
    parser.add_argument("--config", help="the YOLOR config (default: the one stored in the checkpoint)")


def run(args: argparse.Namespace) -> int:
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
