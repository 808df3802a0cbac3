"""A run's checkpoints in storage, as Ray Train registered them (``ray.train.Result``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath

from ray.train import Result

from yolor_ray.layout import CHECKPOINT_DIR_PREFIX

log = logging.getLogger("yolor_ray")


@dataclass(frozen=True)
class Registered:
    """Folder names (under the run) of the checkpoints Ray registered: the latest, and all kept."""

    latest: str | None
    kept: frozenset[str]


def registered_checkpoints(storage, name: str) -> Registered:
    """What Ray Train's own record of run ``name`` lists; nothing for a run that has none."""
    path, filesystem = storage.ray_storage()
    try:
        result = Result.from_path(f"{path}/{name}", storage_filesystem=filesystem)
    except RuntimeError:  # no run folder yet, or no checkpoint registered
        return Registered(None, frozenset())
    folder = lambda checkpoint: PurePosixPath(checkpoint.path).name  # noqa: E731
    latest = folder(result.checkpoint) if result.checkpoint is not None else None
    kept = {folder(checkpoint) for checkpoint, _ in result.best_checkpoints} | ({latest} if latest else set())
    return Registered(latest, frozenset(kept))


def latest_checkpoint(storage, name: str) -> str | None:
    """The folder name of the run's latest checkpoint that Ray registered, if any."""
    return registered_checkpoints(storage, name).latest


def remove_partial_checkpoints(storage, name: str) -> list[str]:
    """Delete checkpoint folders that Ray did not register: uploads cut short (a storage
    outage, a killed worker). What stays in storage is whole or absent."""
    registered = registered_checkpoints(storage, name)
    if registered.latest is None:
        return []
    orphans = [d for d in storage.list_dirs(name) if d.startswith(CHECKPOINT_DIR_PREFIX) and d not in registered.kept]
    for orphan in orphans:
        log.warning("removing partial checkpoint %s (not registered with Ray)", storage.location(name, orphan))
        storage.delete_tree(name, orphan)
    return orphans
