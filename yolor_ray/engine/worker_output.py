"""A worker's own output (prints, library warnings, pycocotools' tables) copied into a file
that goes to the run's storage with its logs, while it still reaches Ray's worker log
(and the driver with ``--verbose``)."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, TextIO


class _Tee:
    """A text stream that writes to the stream it replaces and to a file."""

    def __init__(self, stream: TextIO, copy: TextIO):
        self._stream = stream
        self._copy = copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._copy.flush()
        self._stream.flush()

    def __getattr__(self, name):  # isatty, fileno, encoding: the replaced stream's
        return getattr(self._stream, name)


@contextlib.contextmanager
def copy_output_to(path: Path) -> Iterator[Path]:
    """sys.stdout and sys.stderr also written (line-buffered) to ``path`` while inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1, encoding="utf-8", errors="replace") as copy:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, copy), _Tee(err, copy)
        try:
            yield path
        finally:
            sys.stdout, sys.stderr = out, err
