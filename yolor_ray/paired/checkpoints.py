"""The checkpoint folders a run left in its own folder (checkpoint_000000, ...): which are
whole, which upload was cut short (``train.checkpoints``), and the furthest whole one, where
a run in its Tune actor continues."""
from __future__ import annotations

import logging

from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.checkpoints import furthest_of, stored_checkpoints

__all__ = ["latest_stored_checkpoint", "stored_checkpoints"]

log = logging.getLogger("yolor_ray")


def latest_stored_checkpoint(storage_spec: StorageSpec, name: str) -> str | None:
    """The whole checkpoint folder of run ``name`` that got furthest (by its run state's
    epochs); None when there is none. By the run state, not the name: a trial resumed from
    storage numbers its folders from 0 again. Partial folders are removed, so what stays is
    whole or absent."""
    storage = open_storage(storage_spec)
    whole, partial = stored_checkpoints(storage, name)
    for folder in partial:
        log.warning("removing partial checkpoint %s (its upload did not finish)", storage.location(name, folder))
        storage.delete_tree(name, folder)
    furthest = furthest_of(whole)  # among equals the last listed, as Tune numbers them
    return furthest.folder if furthest else None
