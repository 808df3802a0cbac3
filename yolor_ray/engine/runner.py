"""The Runner of a training worker: MMEngine's, with every rank writing its own log file."""
from __future__ import annotations

from mmengine.runner import Runner


class WorkerRunner(Runner):
    """MMEngine's Runner whose logger writes a log file on every rank, not rank 0 alone
    (MMLogger's ``distributed``): a run that fails on rank N keeps rank N's log."""

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        kwargs.setdefault("distributed", True)
        return super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
