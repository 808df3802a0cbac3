"""A run's MMEngine logs in its storage folder, so they outlive the workers' temp dirs.

Each rank's Runner writes ``WORK_DIR/TIMESTAMP/`` (the text log, ``vis_data/`` with
``scalars.json`` and TensorBoard's event files); we copy that folder, plus the worker's
copied output (``WORK_DIR/output.log``), to ``STORAGE/NAME/logs/TIMESTAMP/`` for rank 0
and ``logs/rankN/TIMESTAMP/`` for the others. A restarted worker group has a new
timestamp, so every attempt's logs stay.
"""
from __future__ import annotations

import logging
from pathlib import Path

from yolor_ray.layout import LOGS_DIR, WORKER_OUTPUT
from yolor_ray.storage import StorageSpec, open_storage

log = logging.getLogger("yolor_ray")


def upload_logs(log_dir: str | Path, storage: StorageSpec, run_name: str, rank: int,
                output_file: Path | None = None) -> int:
    """Copy one rank's log folder (and ``output_file``, into it) into the run's storage;
    returns the files copied. Never raises: losing a log copy must not hide why a run failed."""
    root = Path(log_dir)
    prefix = (LOGS_DIR,) if rank == 0 else (LOGS_DIR, f"rank{rank}")
    files = [(p, p.relative_to(root).parts) for p in sorted(root.rglob("*")) if p.is_file()]
    if output_file is not None and output_file.is_file():
        files.append((output_file, (WORKER_OUTPUT,)))
    copied = 0
    try:
        target = open_storage(storage)
        for path, parts in files:
            target.write_bytes(path.read_bytes(), run_name, *prefix, root.name, *parts)
            copied += 1
    except Exception as err:  # storage down, or a file removed meanwhile
        log.warning("could not copy the logs of rank %d to %s: %s: %s", rank, storage.uri, type(err).__name__, err)
    return copied
