"""The ``yolor-ray`` command: make-shapes, train, tune, reproduce, table, pull, cluster check, fuse.

One module per command, each with ``HELP``, ``add_arguments(parser)`` and ``run(args)``
(``jobs/*.py`` take them for ``ray job submit``); ``train``, ``tune`` and ``reproduce`` also
turn a command line into their spec (``spec_from_argv``). :mod:`.arguments` holds what every
training run takes, :mod:`.running` how every command runs.

A :class:`~yolor_ray.errors.UserError` (what was wrong, what was received, what is
valid) is printed as one line with exit status 2; a training run that fails for good
exits with 1 and says how to resume; anything else is a bug and keeps its traceback.

Each command imports what it needs when it runs (deferred imports, each marked):
``--help``, ``table``, ``pull`` and ``cluster check`` import neither torch nor mmdet.
"""
from __future__ import annotations

import argparse
from types import ModuleType
from typing import Callable, Sequence

from yolor_ray.cli import cluster_check, fuse, make_shapes, pull, reproduce, table, train, tune
from yolor_ray.cli.running import configure_logging, run_guarded

COMMANDS: dict[str, ModuleType] = {"make-shapes": make_shapes, "train": train, "tune": tune,
                                   "reproduce": reproduce, "table": table, "pull": pull}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolor-ray", description="YOLOR implicit knowledge on MMDetection "
                                     "detectors, trained with Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        _add_command(sub, name, command)
    cluster = sub.add_parser("cluster", help=cluster_check.GROUP_HELP)
    _add_command(cluster.add_subparsers(dest="cluster_command", required=True), "check", cluster_check)
    _add_command(sub, "fuse", fuse)
    return parser


def _add_command(sub, name: str, command: ModuleType) -> None:
    parser = sub.add_parser(name, help=command.HELP)
    command.add_arguments(parser)
    parser.set_defaults(func=command.run)


def run_command(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """A command's ``run`` as ``yolor-ray`` runs it: logging set up, a user's mistake one line
    (exit 2), a run that failed for good one line (exit 1)."""
    configure_logging()
    return run_guarded(run, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)
