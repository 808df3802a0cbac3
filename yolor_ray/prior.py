"""``--prior NAME_OR_PATH``: the sd of the paired differences an earlier reproduction or sweep
confirmation measured, for a dry run to price ``--resolution H`` with (``resolution.priced_seeds``).

A reproduction gives one sd per row: its primary metric's (box AP; for Mask R-CNN the larger of
box and mask AP, which asks for more seeds). A confirmation gives one sd, the largest over its
variants, for every row. Both in AP points: a reproduction's differences are in % already, a
confirmation's COCO metric is a fraction and is scaled by 100.

NAME_OR_PATH is, in this order: a local file (``reproduce.json``, ``confirmation.json``), a local
folder or an ``s3://`` prefix holding one, or a reproduction's or sweep's name under ``--storage``.
Light: no torch; nothing is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from yolor_ray import paths
from yolor_ray.errors import UserError
from yolor_ray.layout import CONFIRMATION_FILE, REPRODUCTION_FILE
from yolor_ray.records import Confirmation, RecordError, Reproduction
from yolor_ray.reference import METRIC_LABELS, PRIMARY_METRICS
from yolor_ray.storage import StorageSpec, open_storage

RECORDS = {REPRODUCTION_FILE: Reproduction, CONFIRMATION_FILE: Confirmation}
PRIMARY_LABELS = frozenset(METRIC_LABELS[metric] for metric in PRIMARY_METRICS)


class PriorError(UserError, ValueError):
    """A --prior that names no reproduction or confirmation, or one that measured no sd."""


@dataclass(frozen=True)
class Prior:
    """The measured sds (AP points) of an earlier paired comparison: ``rows`` per reference row (a
    reproduction's), or ``every_row`` (a confirmation's, the largest over its variants)."""

    location: str  # the file read
    kind: str  # 'reproduction' or 'confirmation'
    rows: dict[str, float] = field(default_factory=dict)
    every_row: float | None = None
    basis: str = ""  # what the sd is, for the dry run's text

    def sd_for(self, row: str) -> float | None:
        """The sd for a reference row (None: this reproduction measured none for it)."""
        return self.rows.get(row, self.every_row)

    @property
    def largest(self) -> float:
        """One sd for one comparison of another kind (a sweep's): the largest measured."""
        return max([*self.rows.values(), *([self.every_row] if self.every_row is not None else [])])


def prior_of(record: Reproduction | Confirmation, location: str) -> Prior:
    """The measured sds of a record (read from ``location``): a ``PriorError`` where it has none."""
    if isinstance(record, Reproduction):
        rows = {}
        for row in record.rows:
            sds = [m.paired.diff_sd for m in row.metrics if m.paired.diff_sd is not None
                   and (m.label in PRIMARY_LABELS or m.paired.metric in PRIMARY_METRICS)]
            if sds:
                rows[row.row] = max(sds)
        prior = Prior(location, "reproduction", rows=rows,
                      basis="each row's sd of its paired differences (box AP; Mask R-CNN: the larger of box and mask)")
    else:
        scale = 100.0 if record.metric.startswith("coco/") else 1.0  # a COCO AP is a fraction: AP points
        sds = [scale * v.paired.diff_sd for v in record.variants if v.paired.diff_sd is not None]
        prior = Prior(location, "confirmation", every_row=max(sds) if sds else None,
                      basis=f"the largest sd of the paired differences over its variants ({record.metric}), every row")
    if not prior.rows and prior.every_row is None:
        raise PriorError(f"--prior {location}: the {prior.kind} measured no sd (a comparison needs 2 seeds with "
                         "both arms); pass --assume-sd S")
    return prior


def read_prior(prior: str, storage: StorageSpec) -> Prior:
    """The reproduction or confirmation ``prior`` names (a file, a folder, or a name under
    ``storage``), as measured sds; a ``PriorError`` in one line for anything else."""
    if "://" in prior:
        if prior.endswith(".json"):  # s3://bucket/.../reproduce.json: that file
            folder, _, name = prior.rpartition("/")
            return _parsed(open_storage(StorageSpec(folder, storage.endpoint)).read_text(name), prior, name, prior)
        return _from_folder(StorageSpec(prior, storage.endpoint), prior)
    local = Path(prior).expanduser()
    if local.is_file():
        return _parsed(paths.read_text(local, "--prior file", PriorError), str(local.resolve()), local.name, prior)
    if local.is_dir():
        return _from_folder(StorageSpec(str(local)), prior)
    if "/" in prior or prior.endswith(".json"):
        raise PriorError(f"--prior {prior!r}: no such file or folder")
    return _from_folder(storage, prior, prior)


def _from_folder(spec: StorageSpec, prior: str, *parts: str) -> Prior:
    """The reproduce.json or confirmation.json in the folder ``parts`` of ``spec``."""
    storage = open_storage(spec)
    for name in RECORDS:
        text = storage.read_text(*parts, name)
        if text is not None:
            return _parsed(text, storage.location(*parts, name), name, prior)
    raise PriorError(f"--prior {prior!r}: no {REPRODUCTION_FILE} or {CONFIRMATION_FILE} at {storage.location(*parts)} "
                     "(expected a reproduction or a sweep with --confirm: its name under --storage, its folder or "
                     "its file)")


def _parsed(text: str | None, location: str, file_name: str, prior: str) -> Prior:
    """The record of a file by its name (one of another name: whichever record it reads as)."""
    if text is None:
        raise PriorError(f"--prior {prior!r}: no such file")
    errors = []
    for name in [file_name] if file_name in RECORDS else list(RECORDS):
        try:
            return prior_of(RECORDS[name].from_json(text), location)
        except RecordError as err:
            errors.append(f"not a {'reproduction' if name == REPRODUCTION_FILE else 'confirmation'} ({err})")
    raise PriorError(f"--prior {prior!r}: {location} is {' and '.join(errors)}")
