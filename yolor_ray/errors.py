"""The errors the CLI reports in one line: what a user can fix, and a run that failed.

Each module names its own kinds on this base (``ConfigError``, ``DatasetError``,
``StorageError`` ...); the CLI prints any of them in one line and exits 2. Kinds that
stand where a ``ValueError`` or ``FileExistsError`` stood also subclass it, so code that
calls the Python API and caught those still does. Anything else is our bug: it keeps
its traceback.
"""


class UserError(Exception):
    """Bad input, named with what was received and what is valid."""


def require_int(what: str, value: object, low: int, error: type[UserError] = UserError, *,
                high: int | None = None, optional: bool = False, why: str = "") -> None:
    """The one check of a count an option or a setting takes: an int (a bool is not one) in
    [low, high]; ``optional``: None too. Raises ``error`` (the caller's kind of UserError) naming
    ``what``, the range and the value received."""
    if optional and value is None:
        return
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return
    bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
    raise error(f"{what} must be {'None or ' if optional else ''}an int {bound}{why}, got {value!r}")


class RunFailedError(RuntimeError):
    """Training failed for good (restarts used up, storage lost); its checkpoints stay, and
    the message says how to resume. Not the user's input, and the workers' tracebacks are
    already printed: the CLI prints it in one line and exits 1."""
