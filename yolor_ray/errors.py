"""The errors the CLI reports in one line: what a user can fix, and a run that failed.

Each module names its own kinds on this base (``ConfigError``, ``DatasetError``,
``StorageError`` ...); the CLI prints any of them in one line and exits 2. Kinds that
stand where a ``ValueError`` or ``FileExistsError`` stood also subclass it, so code that
calls the Python API and caught those still does. Anything else is our bug: it keeps
its traceback.
"""


class UserError(Exception):
    """Bad input, named with what was received and what is valid."""


class RunFailedError(RuntimeError):
    """Training failed for good (restarts used up, storage lost); its checkpoints stay, and
    the message says how to resume. Not the user's input, and the workers' tracebacks are
    already printed: the CLI prints it in one line and exits 1."""
