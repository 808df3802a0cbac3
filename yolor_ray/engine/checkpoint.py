"""Load MMEngine / MMDetection checkpoints from anywhere under ``weights_only=True``.

torch >= 2.6 unpickles checkpoints with an allow-list (``weights_only=True``). Rather
than ``weights_only=False`` (which would run whatever a file names), we allow what
MMEngine's checkpoints hold beside tensors and nothing else:

* numpy arrays, scalars and dtypes, under numpy 2's ``numpy._core`` names and numpy
  1.x's ``numpy.core`` names (metrics, RNG state);
* ``Counter`` and ``OrderedDict`` (schedulers' milestones, the message hub), which
  torch already allows;
* ``mmengine.logging.HistoryBuffer`` (the message hub's smoothing buffers). Its state
  names its statistic methods, which pickle reaches as ``builtins.getattr(HistoryBuffer,
  'min')``. ``getattr`` itself is never allowed: that name maps to
  :func:`_history_buffer_statistic`, which answers only HistoryBuffer's own
  min / max / current / mean and refuses any other attribute; and whatever a file's
  buffers bring as statistic methods is dropped after loading (the class keeps its own).

Anything else in a file is refused with :class:`CheckpointError` naming it; torch's
unpickler raises on the first unknown global, before it calls anything.
"""
from __future__ import annotations

import collections
import contextlib
import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import numpy.dtypes
import torch
from mmengine.logging import HistoryBuffer
from numpy._core.multiarray import _reconstruct, scalar

from yolor_ray import paths
from yolor_ray.errors import UserError
from yolor_ray.implicit import LoadReport, is_implicit_key, state_dict_of
from yolor_ray.storage import aws_region

TRUSTED_PREFIX = "yolor-trusted://"  # MMEngine's CheckpointLoader scheme for this loader (registrations.py)
HISTORY_BUFFER_STATISTICS = ("min", "max", "current", "mean")
_NUMPY_CORE_NAMES = ("numpy._core", "numpy.core")  # numpy 2, numpy 1.x


class CheckpointError(UserError, ValueError):
    """A checkpoint file that is missing, is not a checkpoint, or holds what we do not unpickle."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file where one was named."""


def _history_buffer_statistic(owner, name):
    """Stands in for ``builtins.getattr`` while loading: HistoryBuffer's statistic methods only."""
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"getattr({getattr(owner, '__qualname__', type(owner).__name__)}, {name!r})")


def _allowed_globals() -> list:
    """What ``torch.load(weights_only=True)`` may meet beyond torch's own allow-list."""
    allowed = [collections.Counter, collections.OrderedDict, HistoryBuffer, np.ndarray, np.dtype,
               (_history_buffer_statistic, "builtins.getattr")]
    for core in _NUMPY_CORE_NAMES:
        allowed += [(_reconstruct, f"{core}.multiarray._reconstruct"), (scalar, f"{core}.multiarray.scalar")]
    # A dtype unpickles as numpy.dtype(...) but is built as its own class (Float64DType ...).
    allowed += [getattr(numpy.dtypes, name) for name in numpy.dtypes.__all__
                if isinstance(getattr(numpy.dtypes, name), type) and issubclass(getattr(numpy.dtypes, name), np.dtype)]
    return allowed


def _allowed_names() -> set[str]:
    return {item[1] if isinstance(item, tuple) else f"{item.__module__}.{item.__qualname__}"
            for item in _allowed_globals()}


def load_checkpoint_file(path: str | Path, map_location="cpu") -> dict:
    """``torch.load`` with weights_only=True and the allow-list above.

    Raises :class:`CheckpointError` (one line) for a missing file, a file that is not a
    torch checkpoint, or one that holds anything outside the allow-list (named).
    """
    path = paths.input_file(path, "checkpoint", CheckpointError)
    try:
        with torch.serialization.safe_globals(_allowed_globals()), _statistics_methods_kept():
            return torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        foreign = _foreign_globals(path) or sorted(set(re.findall(r"GLOBAL ([\w.]+)", text)) - _allowed_names())
        if foreign:
            raise CheckpointError(f"checkpoint {str(path)!r} holds {', '.join(foreign)}, which yolor-ray does not "
                                  "unpickle (allowed beside tensors: numpy values, Counter, OrderedDict, MMEngine's "
                                  "HistoryBuffer); refused without loading it") from None
        refused = re.search(r"getattr\([^)]*\)", text)
        if refused:
            raise CheckpointError(f"checkpoint {str(path)!r} was refused: it calls {refused.group(0)}; only "
                                  f"HistoryBuffer's {', '.join(HISTORY_BUFFER_STATISTICS)} may be reached so") from None
        raise CheckpointError(f"{str(path)!r} is not a PyTorch checkpoint ({_specific_line(text)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(path)!r} is not a PyTorch checkpoint "
                              f"({type(err).__name__}: {_specific_line(str(err))})") from None


@contextlib.contextmanager
def _statistics_methods_kept():
    """HistoryBuffer's ``__setstate__`` writes the pickled statistic methods into a dict of the
    class, shared by the process: drop what a checkpoint brings (resuming does not need it)."""
    before = dict(HistoryBuffer._statistics_methods)
    try:
        yield
    finally:
        HistoryBuffer._statistics_methods.clear()
        HistoryBuffer._statistics_methods.update(before)


def _specific_line(text: str) -> str:
    """torch's weights_only messages open with a generic paragraph: the line that says what failed."""
    generic = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(generic)]
    return lines[0] if lines else "unreadable"


def _foreign_globals(path: Path) -> list[str]:
    """The globals a zip checkpoint names that we do not allow, read without unpickling."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # not a zip checkpoint: torch's own message says what it met
        return []
    return sorted(set(names) - _allowed_names())


def check_load_from_uri(uri) -> None:
    """``load_from`` is a local path or ``s3://bucket/key`` (other MMEngine schemes would
    bypass the allow-list)."""
    if not isinstance(uri, str) or not uri:
        raise CheckpointError(f"load_from must be a checkpoint path or s3://bucket/key, got {uri!r}")
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("", "s3"):
        raise CheckpointError(f"load_from {uri!r}: only a local path or s3://bucket/key is supported "
                              "(download other checkpoints first)")


@dataclass(frozen=True)
class KeyReport:
    """How a checkpoint's state dict covers a model: matched keys, and the rest by kind."""

    matched: int
    load: LoadReport
    shape_mismatch: tuple[str, ...] = ()

    def summary(self) -> str:
        text = f"{self.matched} keys matched"
        if not self.load.exact:
            text += "; " + self.load.summary()
        if self.shape_mismatch:
            text += f"; {len(self.shape_mismatch)} keys of another shape (not loaded): " \
                    + ", ".join(self.shape_mismatch[:5]) + (" ..." if len(self.shape_mismatch) > 5 else "")
        return text


def compare_keys(model, checkpoint: dict) -> KeyReport:
    """Compare without loading: what MMEngine's non-strict load would fill, miss and skip."""
    try:
        state = state_dict_of(checkpoint)
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    own = model.state_dict()
    shapes = tuple(k for k, v in state.items()
                   if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    load = LoadReport(missing_implicit=tuple(k for k in missing if is_implicit_key(k)),
                      unexpected_implicit=tuple(k for k in unexpected if is_implicit_key(k)),
                      missing=tuple(k for k in missing if not is_implicit_key(k)),
                      unexpected=tuple(k for k in unexpected if not is_implicit_key(k)))
    matched = sum(1 for k in state if k in own and k not in shapes)
    return KeyReport(matched, load, shapes)


def fetch_checkpoint(uri: str, dest_dir: str | Path, s3_endpoint: str | None = None) -> Path:
    """A local path for ``uri``: a local file as is, ``s3://bucket/key`` downloaded with boto3
    (MMEngine's own s3:// loader needs petrel) into ``dest_dir``."""
    if not uri.startswith("s3://"):
        return Path(uri).expanduser()
    import boto3  # deferred: only for s3:// (boto3 takes a second to import)
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise CheckpointError(f"checkpoint URI {uri!r} must look like s3://bucket/key")
    endpoint = s3_endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    fd, local = tempfile.mkstemp(prefix="load-from-", suffix=Path(key).suffix or ".pth", dir=str(dest_dir))
    os.close(fd)
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name=aws_region()).download_file(bucket, key, local)
    except (ClientError, BotoCoreError) as err:
        Path(local).unlink(missing_ok=True)
        raise CheckpointError(f"cannot download checkpoint {uri!r}"
                              + (f" from {endpoint}" if endpoint else "") + f": {err}") from None
    return Path(local)


def load_trusted_checkpoint(filename: str, map_location=None) -> dict:
    """MMEngine's loader for ``yolor-trusted://PATH`` (ours on resume, a user's ``load_from``):
    :func:`load_checkpoint_file` instead of its bare ``torch.load``."""
    return load_checkpoint_file(filename[len(TRUSTED_PREFIX):], map_location=map_location)
