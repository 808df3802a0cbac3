"""The one check of every local path a command takes, before Ray starts and before anything
is written: an input file, an input folder (or either), a text file read as UTF-8, an output
file, an output folder.

Each problem is one line that names the option, the path and what is wrong, raised as the
caller's kind of :class:`~yolor_ray.errors.UserError` (``error``, a kind made from one message;
:class:`PathError` by default), the way :func:`~yolor_ray.errors.require_int` checks a count::

    config file 'configs/nope.py' not found
    --space file 'sweeps' is a folder; expected a file
    dataset folder 'x.json' is a file; --data takes a COCO-layout folder (...)
    checkpoint 'epoch_3.pth' is not readable (permission denied)
    search space file 'space.yaml' is not UTF-8 text (byte 0xff at offset 12)
    --dry-run FILE 'out/merged.py': its folder 'out' does not exist
    storage folder '/proc/results' cannot be created or written (...)

What a path must hold beyond that (a Python config, a YAML file, a torch checkpoint) is its
own module's check, made after this one. ``s3://`` URIs are checked where they are opened.
No torch, mmcv, mmengine or mmdet here: the light commands use it.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from yolor_ray.errors import UserError


class PathError(UserError, ValueError):
    """A path that is missing, of the wrong kind, unreadable, not text, or that cannot be written."""


def input_file(path: str | os.PathLike, what: str, error: type[UserError] = PathError, *, hint: str = "") -> Path:
    """``path`` is a file this process can read. ``what`` names it in the message ("config file",
    "--space file"); ``hint`` says what the option takes, after a missing path or one of the
    wrong kind (default: "expected a file")."""
    return _input(Path(path), what, error, hint, folder=False, file=True)


def input_folder(path: str | os.PathLike, what: str, error: type[UserError] = PathError, *,
                 hint: str = "") -> Path:
    """``path`` is a folder this process can list; as :func:`input_file` otherwise."""
    return _input(Path(path), what, error, hint, folder=True, file=False)


def input_file_or_folder(path: str | os.PathLike, what: str, error: type[UserError] = PathError, *,
                         hint: str = "") -> Path:
    """``path`` is a readable file or a listable folder (a checkpoint file or a checkpoint
    folder, a run folder or a checkpoint); as :func:`input_file` otherwise."""
    return _input(Path(path), what, error, hint, folder=True, file=True)


def read_text(path: str | os.PathLike, what: str, error: type[UserError] = PathError, *, hint: str = "") -> str:
    """The text of an input file (:func:`input_file`), decoded as UTF-8 (a byte-order mark is
    dropped); bytes that are not UTF-8 are one line naming the first one."""
    path = input_file(path, what, error, hint=hint)
    subject = f"{what} {_quoted(path)}"
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{subject} {_unreadable(err)}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{subject} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def output_file(path: str | os.PathLike, what: str, error: type[UserError] = PathError) -> Path:
    """``path`` can be written as a file: a writable file that is there, or else its folder
    exists (it is not made) and takes a new file; not a folder. Whether a file already there
    may be replaced is the caller's rule."""
    path = Path(path)
    subject = f"{what} {_quoted(path)}"
    found = _stat(path, subject, error, output=True)
    if found is not None:  # there already (a file, or /dev/stdout): written in place
        if stat.S_ISDIR(found.st_mode):
            raise error(f"{subject} is a folder; expected a file")
        if not os.access(path, os.W_OK):
            raise error(f"{subject} is not writable (permission denied)")
        return path
    folder = path.parent
    where = f"{subject}: its folder {_quoted(folder)}"
    found = _stat(folder, where, error, output=True)
    if found is None:
        raise error(f"{where} does not exist")
    if not stat.S_ISDIR(found.st_mode):
        raise error(f"{where} is {_kind(found)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"{where} is not writable (permission denied)")
    return path


def output_folder(path: str | os.PathLike, what: str, error: type[UserError] = PathError) -> Path:
    """``path`` is a folder that can be written, or can be made: nothing of another kind stands
    at it or at the folders to make above it, and the nearest folder that exists takes a new
    folder (tried: one is made and removed at once, since permission bits do not stop root
    and some filesystems, /proc or a read-only mount, refuse anyway). Missing folders above
    it are made with it, as ``--storage``, ``pull`` and ``make-shapes`` always did."""
    path = Path(path)
    subject = f"{what} {_quoted(path)}"
    existing, found = path, _stat(path, subject, error, output=True)
    if found is not None and not stat.S_ISDIR(found.st_mode):
        raise error(f"{subject} is {_kind(found)}; expected a folder")
    for parent in path.absolute().parents:  # the nearest that exists ('/' does)
        if found is not None:
            break
        existing, found = parent, _stat(parent, subject, error, output=True)
    if not stat.S_ISDIR(found.st_mode):
        raise error(f"{subject} cannot be made: {_quoted(existing)} is {_kind(found)}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"{subject} cannot be created or written ({_quoted(existing)} is not a writable folder)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".yolor-ray-probe-", dir=existing))
    except OSError as err:
        raise error(f"{subject} cannot be created or written (creating a folder in {_quoted(existing)} failed: "
                    f"{err.strerror or err})") from None
    return path


def _input(path: Path, what: str, error: type[UserError], hint: str, *, folder: bool, file: bool) -> Path:
    subject = f"{what} {_quoted(path)}"
    expected = " or ".join(kind for kind, wanted in (("a file", file), ("a folder", folder)) if wanted)
    found = _stat(path, subject, error)
    if found is None:
        raise error(f"{subject} not found" + (f"; {hint}" if hint else ""))
    is_folder = stat.S_ISDIR(found.st_mode)
    if not ((folder and is_folder) or (file and stat.S_ISREG(found.st_mode))):
        raise error(f"{subject} is {_kind(found)}; {hint or 'expected ' + expected}")
    try:
        if is_folder:
            with os.scandir(path) as entries:
                next(entries, None)
        else:
            os.close(os.open(path, os.O_RDONLY))
    except OSError as err:
        raise error(f"{subject} {_unreadable(err)}") from None
    return path


def _stat(path: Path, subject: str, error: type[UserError], *, output: bool = False) -> os.stat_result | None:
    """What is at ``path`` (links followed); None when nothing is."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:  # a folder on the way that may not be searched, a loop of links
        if output:
            why = "permission denied" if isinstance(err, PermissionError) else err.strerror or str(err)
            raise error(f"{subject} cannot be created or written ({why})") from None
        raise error(f"{subject} {_unreadable(err)}") from None


def _unreadable(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "is not readable (permission denied)"
    return f"cannot be read ({err.strerror or err})"


def _kind(found: os.stat_result) -> str:
    mode = found.st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _quoted(path: Path) -> str:
    return repr(str(path))
