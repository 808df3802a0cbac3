"""A config's own module (``custom_imports``), as users bring: a disk that fills up.

Each time a worker starts training (the first attempt, or one Ray restarted after a failure
it retried) it adds a line to the file ``$YOLOR_TEST_ATTEMPTS``. With ``$YOLOR_TEST_FILL``
(a folder on a tmpfs), rank 0 fills that filesystem at its first report with a checkpoint,
before Ray uploads it, but for the room the checkpoint's files take: the checkpoint lands
whole, and the next write, Ray's controller creating its record of that checkpoint, meets a
full disk. The filler is :data:`FILLER` in that folder.
"""
import os

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

FILLER = ".filler"


@HOOKS.register_module()
class StorageFaultHook(Hook):
    def before_train(self, runner):
        attempts = os.environ.get("YOLOR_TEST_ATTEMPTS")
        if attempts:
            with open(attempts, "a") as f:
                f.write(f"{runner.experiment_name}\n")
        folder = os.environ.get("YOLOR_TEST_FILL")
        if folder and runner.rank == 0:
            (report_hook,) = [hook for hook in runner.hooks if hasattr(hook, "reporter")]
            report_hook.reporter = _FillingReporter(report_hook.reporter, folder)


class _FillingReporter:
    """The worker's reporter, filling the disk before its first checkpoint's upload."""

    def __init__(self, reporter, folder: str):
        self.reporter = reporter
        self.folder = folder

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        if checkpoint_dir is not None and self.folder:
            _fill_but(self.folder, _room_for(checkpoint_dir, os.statvfs(self.folder).f_frsize))
            self.folder = ""
        self.reporter.report(metrics, checkpoint_dir=checkpoint_dir)


def _room_for(folder: str, block: int) -> int:
    """Bytes the files of ``folder`` take on a filesystem of ``block``-byte blocks."""
    sizes = [os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names]
    return sum(-(-size // block) * block for size in sizes)


def _fill_but(folder: str, room: int) -> None:
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    fd = os.open(os.path.join(folder, FILLER), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, free - room)
    finally:
        os.close(fd)
    left = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    assert left == room, f"filled {folder} to leave {room} bytes, {left} left"
