"""A config's own module (``custom_imports``), as users bring: a storage that fails for good.

Each time a worker starts training (the first attempt, or one Ray restarted after a failure
it retried) it adds a line to the file ``$YOLOR_TEST_ATTEMPTS``. At rank 0's first report
with a checkpoint, before Ray uploads it, ``$YOLOR_TEST_FAULT`` makes the storage fail:

* ``fill:DIR`` fills the filesystem of DIR (a tmpfs) but for the room the checkpoint's files
  take: the checkpoint lands whole, and the next write, Ray's controller creating its record
  of that checkpoint, meets a full disk (the filler is :data:`FILLER` in DIR);
* ``delete-bucket:NAME@ENDPOINT`` deletes the S3 bucket NAME (its objects, then it): the
  checkpoint's upload meets NoSuchBucket.
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
        fault = os.environ.get("YOLOR_TEST_FAULT")
        if fault and runner.rank == 0:
            (report_hook,) = [hook for hook in runner.hooks if hasattr(hook, "reporter")]
            report_hook.reporter = _FailingReporter(report_hook.reporter, fault)


class _FailingReporter:
    """The worker's reporter, with the fault planted before its first checkpoint's upload."""

    def __init__(self, reporter, fault: str):
        self.reporter = reporter
        self.fault = fault

    def report(self, metrics: dict, checkpoint_dir: str | None = None) -> None:
        if checkpoint_dir is not None and self.fault:
            kind, _, target = self.fault.partition(":")
            if kind == "fill":
                _fill_but(target, _room_for(checkpoint_dir, os.statvfs(target).f_frsize))
            elif kind == "delete-bucket":
                _delete_bucket(*target.split("@", 1))
            else:
                raise ValueError(f"unknown YOLOR_TEST_FAULT {self.fault!r}")
            self.fault = ""
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


def _delete_bucket(bucket: str, endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)
