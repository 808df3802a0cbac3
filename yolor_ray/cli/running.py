"""How every command runs: logging set up, a user's mistake as one line with its exit status,
the driver's library warnings held for the run's storage, a ``--dry-run``'s output."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from yolor_ray.errors import RunFailedError, UserError
from yolor_ray.layout import DRIVER_WARNINGS, LOGS_DIR


def configure_logging() -> None:
    """Our progress at INFO; libraries' chatter (boto's credential lookups) only from WARNING."""
    logging.basicConfig(level=logging.WARNING, format="[yolor-ray] %(message)s")
    logging.getLogger("yolor_ray").setLevel(logging.INFO)


def run_guarded(func: Callable[[argparse.Namespace], int], args) -> int:
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


def raise_if_missing(missing: list, planned: int, rerun: str) -> None:
    """A paired comparison (a reproduction, a confirmation) with runs that have no results: exit 1."""
    if missing:
        first = missing[0]
        raise RunFailedError(f"{len(missing)} of {planned} run(s) have no results (first: {first.arm} seed "
                             f"{first.seed}: {first.error}); the same command with {rerun} trains them again, the "
                             "others are reused")
