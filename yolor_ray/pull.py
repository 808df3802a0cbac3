"""``yolor-ray pull RUN_OR_SWEEP DEST``: a run's or a sweep's folder copied from its storage
(``s3://bucket/prefix/NAME`` or a local folder) to a local folder, e.g. to point
``tensorboard --logdir DEST`` at an S3 run's event files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolor_ray import paths
from yolor_ray.errors import UserError
from yolor_ray.layout import RUN_FILE, SWEEP_FILE
from yolor_ray.storage import StorageSpec, open_storage


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
    if storage.read_text(SWEEP_FILE) is not None:
        kind = "sweep"
    elif storage.read_text(RUN_FILE) is not None:
        kind = "run"
    else:
        what = "nothing is stored there" if not storage.files() else f"it has neither {RUN_FILE} nor {SWEEP_FILE}"
        raise NothingToPullError(f"no run or sweep at {storage.location()!r}: {what}; name a run or sweep folder, "
                                 "e.g. s3://bucket/prefix/NAME")
    dest = dest.resolve()
    copied = size = 0
    for parts in storage.files():
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = storage.read_bytes(*parts)
        target.write_bytes(data)
        copied, size = copied + 1, size + len(data)
    return Pulled(storage.location(), dest, kind, copied, size)
