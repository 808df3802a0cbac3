"""A config's own module (``custom_imports``), as users bring: each rank that builds its
Runner with it writes ``rank<R>`` into ``$YOLOR_TEST_MARKERS``."""
import os
from pathlib import Path

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankMarkerHook(Hook):
    def before_train(self, runner):
        Path(os.environ["YOLOR_TEST_MARKERS"], f"rank{runner.rank}").write_text(str(os.getpid()))
