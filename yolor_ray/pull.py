"""``yolor-ray pull RUN_OR_SWEEP DEST``: a run's or a sweep's folder copied from its storage
(``s3://bucket/prefix/NAME`` or a local folder) to a local folder, e.g. to point
``tensorboard --logdir DEST`` at an S3 run's event files. An S3 source is checked first, as
``train`` and ``table`` check theirs: no credentials, an endpoint that does not answer, a
missing bucket or a denied one is one line (``storage.s3_access_error``); each file lands whole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolor_ray import paths
from yolor_ray.errors import UserError
from yolor_ray.layout import RUN_FILE, SWEEP_FILE
from yolor_ray.storage import S3Storage, Storage, StorageSpec, open_storage, s3_access_error


class NothingToPullError(UserError, FileNotFoundError):
    """A source that is not a stored run or sweep."""


@dataclass(frozen=True)
class Pulled:
    source: str
    dest: Path
    kind: str  # 'run' or 'sweep'
    files: int
    bytes: int


def pull(source: str, dest: str | Path, s3_endpoint: str | None = None) -> Pulled:
    """Copy every file of the run or sweep at ``source`` under ``dest`` (made with its parents;
    existing files replaced)."""
    dest = paths.output_folder(Path(dest).expanduser(), "pull destination")
    if "://" not in source:
        paths.input_folder(Path(source).expanduser(), "pull source", NothingToPullError,
                           hint="expected a run or sweep folder")
    storage = open_storage(StorageSpec(source.rstrip("/") if "://" in source else source, s3_endpoint))
    if not isinstance(storage, S3Storage):
        return _copy(storage, dest)
    storage.check()
    try:
        return _copy(storage, dest)
    except Exception as err:  # the endpoint went away, or access was withdrawn, while copying
        error = s3_access_error(err, storage.spec.bucket, storage.endpoint)
        if error is None:
            raise
        raise error from None


def _copy(storage: Storage, dest: Path) -> Pulled:
    if storage.read_text(SWEEP_FILE) is not None:
        kind = "sweep"
    elif storage.read_text(RUN_FILE) is not None:
        kind = "run"
    else:
        what = "nothing is stored there" if not storage.files() else f"it has neither {RUN_FILE} nor {SWEEP_FILE}"
        raise NothingToPullError(f"no run or sweep at {storage.location()!r}: {what}; name a run or sweep folder, "
                                 "e.g. s3://bucket/prefix/NAME")
    dest = dest.resolve()
    local = open_storage(StorageSpec(str(dest)))
    copied = size = 0
    for parts in storage.files():
        data = storage.read_bytes(*parts)
        local.write_bytes(data, *parts)  # whole or not at all, as in storage
        copied, size = copied + 1, size + len(data)
    return Pulled(storage.location(), dest, kind, copied, size)
