"""The Runner of a training worker: MMEngine's, with every rank writing its own log file,
and the config it is built from."""
from __future__ import annotations

from mmengine.config import Config
from mmengine.runner import Runner

_TEXT = "_yolor_ray_pretty_text"


class TextOnceConfig(Config):
    """A Config that formats its text (yapf: ~0.6 s of CPU for a detector's config) once:
    a Runner's build formats it three times otherwise (its own dump, the local and the
    TensorBoard backends' copies), a second of every sweep trial's start-up. The text is
    the config as first formatted; the Runner does not change it after building."""

    @property
    def pretty_text(self) -> str:
        text = self.__dict__.get(_TEXT)
        if text is None:
            text = super().pretty_text
            object.__setattr__(self, _TEXT, text)  # Config's own __setattr__ writes config keys
        return text


class WorkerRunner(Runner):
    """MMEngine's Runner whose logger writes a log file on every rank, not rank 0 alone
    (MMLogger's ``distributed``): a run that fails on rank N keeps rank N's log."""

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        kwargs.setdefault("distributed", True)
        return super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
