"""The checkpoint folders a run left in its own folder (checkpoint_000000, ...): which are
whole, which upload was cut short, and the furthest whole one, where the run continues.
Storage only: no Ray, no torch."""
from __future__ import annotations

import logging

from yolor_ray.layout import CHECKPOINT_DIR_PREFIX, CHECKPOINT_FILE, RUN_STATE_FILE
from yolor_ray.records import RunState
from yolor_ray.storage import Storage, StorageSpec, open_storage

log = logging.getLogger("yolor_ray")


def stored_checkpoints(storage: Storage, name: str) -> tuple[list[tuple[int, str]], list[str]]:
    """The checkpoint folders persisted for run ``name``, read only: (epochs run, folder) of
    each whole one, and the folders whose upload was cut short (a killed run: the checkpoint
    file missing or shorter than its run state says)."""
    whole, partial = [], []
    for folder in storage.list_dirs(name):
        if not folder.startswith(CHECKPOINT_DIR_PREFIX):
            continue
        text = storage.read_text(name, folder, RUN_STATE_FILE)
        state = RunState.from_json(text) if text is not None else None
        size = storage.size(name, folder, CHECKPOINT_FILE)
        if state is None or size is None or state.checkpoint_bytes not in (None, size):
            partial.append(folder)
        else:
            whole.append((state.epochs_run, folder))
    return whole, partial


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
    furthest = None
    for epochs, folder in whole:  # among equals the last listed, as Tune numbers them
        if furthest is None or epochs >= furthest[0]:
            furthest = (epochs, folder)
    return furthest[1] if furthest else None
