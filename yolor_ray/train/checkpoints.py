"""A run's checkpoints in storage: those Ray Train registered (``ray.train.Result``), those
that are whole, and the one the same command resumes from.

Ray Train keeps its record of a run's checkpoints in one file, its checkpoint manager's
snapshot, rewritten after every checkpoint. On a local disk that rewrite is not atomic: a
disk that fills up during it leaves the file empty or cut short, and Ray then refuses to
start the run again. :func:`set_aside_unreadable_record` renames such a record (it is kept,
never deleted) so the run resumes from its newest whole checkpoint instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from ray.train import Result
from ray.train.v2._internal.constants import CHECKPOINT_MANAGER_SNAPSHOT_FILENAME
from ray.train.v2._internal.exceptions import CheckpointManagerInitializationError

from yolor_ray.layout import CHECKPOINT_DIR_PREFIX, CHECKPOINT_FILE, RUN_STATE_FILE
from yolor_ray.records import RecordError, RunState
from yolor_ray.storage import Storage

log = logging.getLogger("yolor_ray")
RAY_RECORD = CHECKPOINT_MANAGER_SNAPSHOT_FILENAME  # Ray Train's record of a run's checkpoints, in the run's folder


@dataclass(frozen=True)
class Registered:
    """Folder names (under the run) of the checkpoints Ray registered: the latest, and all kept."""

    latest: str | None
    kept: frozenset[str]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A whole checkpoint folder of a run and the epochs its run state had run."""

    folder: str
    epochs: int


@dataclass(frozen=True)
class SetAside:
    """Ray's record of a run that did not read, renamed: why, and where it is now."""

    reason: str
    kept_as: str


def registered_checkpoints(storage, name: str) -> Registered:
    """What Ray Train's own record of run ``name`` lists; nothing for a run that has none, or
    whose record does not read (:func:`unreadable_record`)."""
    path, filesystem = storage.ray_storage()
    try:
        result = Result.from_path(f"{path}/{name}", storage_filesystem=filesystem)
    except (RuntimeError, CheckpointManagerInitializationError):  # no run folder, no record, or one that does not read
        return Registered(None, frozenset())
    folder = lambda checkpoint: PurePosixPath(checkpoint.path).name  # noqa: E731
    latest = folder(result.checkpoint) if result.checkpoint is not None else None
    kept = {folder(checkpoint) for checkpoint, _ in result.best_checkpoints} | ({latest} if latest else set())
    return Registered(latest, frozenset(kept))


def latest_checkpoint(storage, name: str) -> str | None:
    """The folder name of the run's latest checkpoint that Ray registered, if any."""
    return registered_checkpoints(storage, name).latest


def stored_checkpoints(storage: Storage, name: str) -> tuple[list[tuple[int, str]], list[str]]:
    """The checkpoint folders persisted for run ``name``, read only: (epochs run, folder) of
    each whole one, and the folders whose upload was cut short (the checkpoint file missing or
    shorter than its run state says, the run state missing or not JSON)."""
    whole, partial = [], []
    for folder in storage.list_dirs(name):
        if not folder.startswith(CHECKPOINT_DIR_PREFIX):
            continue
        text = storage.read_text(name, folder, RUN_STATE_FILE)
        try:
            state = RunState.from_json(text) if text is not None else None
        except RecordError:  # cut short
            state = None
        size = storage.size(name, folder, CHECKPOINT_FILE)
        if state is None or size is None or state.checkpoint_bytes not in (None, size):
            partial.append(folder)
        else:
            whole.append((state.epochs_run, folder))
    return whole, partial


def furthest_of(whole: list[tuple[int, str]]) -> StoredCheckpoint | None:
    """Of whole checkpoints as :func:`stored_checkpoints` lists them, the one that got furthest
    (among equals the last listed); None for none."""
    furthest = None
    for epochs, folder in whole:
        if furthest is None or epochs >= furthest.epochs:
            furthest = StoredCheckpoint(folder, epochs)
    return furthest


def resume_checkpoint(storage: Storage, name: str) -> StoredCheckpoint | None:
    """The checkpoint the same command resumes run ``name`` from: Ray's latest registered
    one when its record reads and that checkpoint is whole, else the newest whole one (Ray's
    record set aside, or never written: the run was stopped before Ray registered any)."""
    latest = registered_checkpoints(storage, name).latest
    whole, _ = stored_checkpoints(storage, name)
    epochs = {folder: run for run, folder in whole}
    if latest in epochs:
        return StoredCheckpoint(latest, epochs[latest])
    return furthest_of(whole)


def remove_partial_checkpoints(storage, name: str, quiet: bool = False) -> list[str]:
    """Delete the checkpoint folders Ray did not register that are not whole (uploads cut
    short by a storage outage, a full disk, a killed worker), and, once Ray has registered
    one, every other folder it did not register (a whole one the run went on from). What
    stays in storage is whole or absent; a whole one stays while Ray's record names none
    (the run resumes from it). Each is logged unless ``quiet``; returns the folders deleted."""
    registered = registered_checkpoints(storage, name)
    whole, partial = stored_checkpoints(storage, name)
    # A partial one is news (a warning); a whole one the run went on from is housekeeping.
    orphans = {folder: (logging.WARNING, "partial checkpoint {} (not registered with Ray)")
               for folder in partial if folder not in registered.kept}
    if registered.latest is not None:
        orphans.update({folder: (logging.INFO, "checkpoint {} (whole, but not in Ray's record: the run went on "
                                               "from it)") for _, folder in whole if folder not in registered.kept})
    for orphan, (level, what) in sorted(orphans.items()):
        if not quiet:
            log.log(level, "removing " + what.format(storage.location(name, orphan)))
        storage.delete_tree(name, orphan)
    return sorted(orphans)


def unreadable_record(storage, name: str) -> str | None:
    """Why Ray Train would refuse its record of run ``name`` ('empty', its JSON error, a
    checkpoint it names that is not there); None when it reads or there is none."""
    size = storage.size(name, RAY_RECORD)  # this name exactly: S3's exists() matches a prefix
    if size is None:
        return None
    if size == 0:
        return "empty"
    path, filesystem = storage.ray_storage()
    try:
        Result.from_path(f"{path}/{name}", storage_filesystem=filesystem)
    except CheckpointManagerInitializationError as err:
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


def set_aside_unreadable_record(storage, name: str, now: datetime | None = None) -> SetAside | None:
    """Ray's record of run ``name`` renamed to ``...json.invalid-TIMESTAMP`` when it does not
    read (:func:`unreadable_record`): the run then resumes from its newest whole checkpoint
    (:func:`resume_checkpoint`). None when it reads (or there is none) and nothing was changed."""
    reason = unreadable_record(storage, name)
    if reason is None:
        return None
    kept_as = f"{RAY_RECORD}.invalid-{(now or datetime.now()):%Y%m%d-%H%M%S}"
    storage.rename((name, RAY_RECORD), (name, kept_as))
    return SetAside(reason, storage.location(name, kept_as))
