"""Warm starts (``--from BASELINE``): a run or every trial of a sweep starts from a trained
baseline's weights and fine-tunes.

BASELINE is a finished run folder (local or ``s3://``; its ``results.json`` names the
checkpoint) or a checkpoint file. Its weights load through the allow-listed loader
(``load_from``, non-strict); a YOLOR model's implicit parameters are not in a baseline,
so they keep their init and each variant starts as the baseline. Any other key that
differs is a baseline of another architecture: refused before Ray starts.

The fine-tuning schedule (docs/tune.md): the config's LR times ``finetune_lr_factor``
(default 0.1), constant (no warm-up: the weights are trained, warm-up protects a random
init), for ``--epochs``. ``--cfg-options`` (e.g. ``param_scheduler=...``, the LR) win over
it, and a sweep's ``--lr`` is the fine-tuning LR itself. ``--train implicit`` trains the
implicit parameters alone (every other parameter frozen; BN statistics still update).
Every warm-started run validates once before its first epoch (``before_training`` in
its results): the AP it starts from.

This module finds the baseline's checkpoint (before the config is adapted) and checks what it
holds against the model; the schedule's config edits are ``config.edits``'
``use_finetune_schedule`` and ``train_implicit_only``.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from yolor_ray import paths
from yolor_ray.engine.checkpoint import KeyReport
from yolor_ray.errors import UserError
from yolor_ray.implicit import is_implicit_key
from yolor_ray.layout import CHECKPOINT_FILE, RESULTS_FILE, RUN_FILE
from yolor_ray.records import RecordError, RunResults
from yolor_ray.storage import StorageSpec, open_storage


class BaselineError(UserError, ValueError):
    """A ``--from`` baseline that is missing, unfinished, or of another architecture."""


def baseline_checkpoint(uri: str, s3_endpoint: str | None) -> str:
    """The checkpoint file of BASELINE: the one its results.json names (a run folder), or
    BASELINE itself (a checkpoint file, local or s3://bucket/key)."""
    if not uri.startswith("s3://"):
        local = paths.input_file_or_folder(Path(uri).expanduser(), "--from", BaselineError)
        if local.is_file():
            return str(local.resolve())
    elif uri.endswith(".pth"):
        return uri
    path = PurePosixPath(uri.rstrip("/").split("://", 1)[-1])
    if not path.name or path.parent == PurePosixPath(""):
        raise BaselineError(f"--from {uri!r}: expected a run folder or a checkpoint file")
    parent = (f"s3://{path.parent}" if uri.startswith("s3://") else str(Path(uri).expanduser().resolve().parent))
    storage = open_storage(StorageSpec(parent, s3_endpoint))
    text = storage.read_text(path.name, RESULTS_FILE)
    if text is None:
        if storage.exists(path.name, RUN_FILE):
            raise BaselineError(f"--from {uri!r}: that run has not finished (no {RESULTS_FILE}); finish it first "
                                "or pass one of its checkpoint files")
        if storage.exists(path.name):
            raise BaselineError(f"--from {uri!r} is neither a finished run (no {RESULTS_FILE}) nor a checkpoint file")
        raise BaselineError(f"--from {uri!r}: no such run folder or checkpoint file")
    try:
        record = RunResults.from_json(text)
    except RecordError as err:
        raise BaselineError(f"--from {uri!r}: its {RESULTS_FILE} is not a run's results: {err}") from None
    if not record.checkpoint:
        raise BaselineError(f"--from {uri!r}: its {RESULTS_FILE} names no checkpoint")
    # By the folder's name under the run: a run folder that was copied elsewhere still works.
    return storage.location(path.name, PurePosixPath(record.checkpoint).name, CHECKPOINT_FILE)


def check_trains_implicit(start, model) -> None:
    """``--train implicit`` needs implicit parameters to fine-tune."""
    if start.train_params == "implicit" and not any(is_implicit_key(k) for k, _ in model.named_parameters()):
        raise BaselineError("--train implicit: this model has no implicit parameters (a baseline "
                            "config; sweep its YOLOR variants, or train a YOLOR config)")


def check_baseline_fits(uri: str, model_type: str, report: KeyReport) -> str:
    """The baseline fits the model but for implicit keys; returns what loads (logged)."""
    load = report.load
    other = [*load.missing, *load.unexpected, *report.shape_mismatch]
    if other:
        raise BaselineError(
            f"--from {uri!r} is not a baseline of this {model_type}: {len(other)} key(s) beyond the implicit ones "
            f"differ ({', '.join(other[:3])}{' ...' if len(other) > 3 else ''})")
    if load.unexpected_implicit:
        return f"{report.matched} keys matched, its {len(load.unexpected_implicit)} implicit keys not used"
    return (f"{report.matched} keys matched"
            + (f", {len(load.missing_implicit)} implicit keys at their init" if load.missing_implicit else ""))
