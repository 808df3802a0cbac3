"""A config's own module (``custom_imports``), as users bring: the run named in
``$YOLOR_TEST_FAIL_RUN`` fails as its first epoch starts; every other run trains as usual."""
import os

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class PlantedFailureHook(Hook):
    def before_train_epoch(self, runner):
        name = os.environ.get("YOLOR_TEST_FAIL_RUN")
        # The worker names each Runner's experiment RUN-<random suffix>.
        if name and runner.experiment_name.startswith(f"{name}-"):
            raise RuntimeError(f"planted failure of {name}")
