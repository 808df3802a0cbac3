"""The one check of a ``--name`` that train, tune and reproduce make before writing anything,
and the one default name: is the folder free, or does it hold our manifest of this kind
(run.json, sweep.json, reproduce_plan.json), started with these settings?

One error type for all three, :class:`NameTakenError`; each caller says what a taken name of
its kind means (a complete run, a sweep started with another space ...).
"""
from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from yolor_ray.errors import UserError
from yolor_ray.records import Record, RecordError
from yolor_ray.storage import Storage

R = TypeVar("R", bound=Record)


class NameTakenError(UserError, FileExistsError):
    """A --name that is taken: by something that is not ours, by a finished run or sweep, or by
    one started with other settings."""


def default_name(prefix: str, now: datetime | None = None) -> str:
    """``PREFIX-YYYYmmdd-HHMMSS``: a run's is its config's stem, a sweep's ``sweep-STEM``, a
    reproduction's ``reproduce``."""
    return f"{prefix}-{(now or datetime.now()):%Y%m%d-%H%M%S}"


def held_manifest(storage: Storage, name: str, kind: str, record_type: type[R], file_name: str) -> R | None:
    """What ``name`` holds: None when the name is free, else its ``file_name`` read as
    ``record_type``; a folder without it, or with a file that is not ours, is refused."""
    if not storage.exists(name):
        return None
    try:
        return record_type.from_stored(storage.read_text(name, file_name), file_name)
    except RecordError as err:
        raise NameTakenError(f"{storage.location(name)!r} exists but is not a yolor-ray {kind} ({err}); "
                             "pick another --name") from None


def started_otherwise(storage: Storage, name: str, kind: str, what_changed: str, remedy: str) -> NameTakenError:
    """'KIND 'LOCATION' was started with WHAT_CHANGED; REMEDY' (the caller raises it)."""
    return NameTakenError(f"{kind} {storage.location(name)!r} was started with {what_changed}; {remedy}")


def complete(storage: Storage, name: str, kind: str, marker: str, remedy: str = "") -> NameTakenError:
    """'KIND 'LOCATION' is complete (it has MARKER); pick another --name[REMEDY]' (the caller raises it)."""
    return NameTakenError(f"{kind} {storage.location(name)!r} is complete (it has {marker}); pick another --name"
                          + remedy)
