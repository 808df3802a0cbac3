"""A run's MMEngine logs in its storage folder, so they outlive the workers' temp dirs.

Each rank's Runner writes ``WORK_DIR/TIMESTAMP/`` (the text log, ``vis_data/`` with
``scalars.json``); we copy that folder to ``STORAGE/NAME/logs/TIMESTAMP/`` for rank 0
and ``logs/rankN/TIMESTAMP/`` for the others. A restarted worker group has a new
timestamp, so every attempt's logs stay.
"""
from __future__ import annotations

import logging
from pathlib import Path

from yolor_ray.layout import LOGS_DIR
from yolor_ray.storage import StorageSpec, open_storage

log = logging.getLogger("yolor_ray")


def upload_logs(log_dir: str | Path, storage: StorageSpec, run_name: str, rank: int) -> int:
    """Copy one rank's log folder into the run's storage; returns the files copied.
    Never raises: losing a log copy must not hide why a run failed."""
    root = Path(log_dir)
    prefix = (LOGS_DIR,) if rank == 0 else (LOGS_DIR, f"rank{rank}")
    copied = 0
    try:
        target = open_storage(storage)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            target.write_bytes(path.read_bytes(), run_name, *prefix, root.name, *path.relative_to(root).parts)
            copied += 1
    except Exception as err:  # storage down, or a file removed meanwhile
        log.warning("could not copy the logs of rank %d to %s: %s: %s", rank, storage.uri, type(err).__name__, err)
    return copied
