"""The ``TorchTrainer`` of a run: Ray Train's, without the helper actors a run of ours never uses.

Every Ray Train run starts some helper actors besides its controller and workers, each a
Python process that imports Ray Train and Ray Data (1.5 to 2 CPU-seconds apiece, measured
in bench/ray_overhead's start-up profile). These do nothing for our runs:

* the dataset manager, made for every run to shard Ray Datasets, with or without any: our
  workers read their data through MMEngine (``datasets`` is never passed);
* on a private local Ray (:func:`yolor_ray.train.ray_cluster.on_private_ray`), the
  placement-group cleaner, a detached actor that polls Ray's state API (the dashboard) every
  second to remove the worker group's placement group should the controller die without
  doing it. Everything of a private Ray goes with it when its driver shuts it down, and it
  runs without the dashboard. On a cluster the cleaner stays;
* on a private local Ray, the autoscaling coordinator, an actor the controller asks (and
  waits for) before it starts the workers, to pass their resources on to the cluster's
  autoscaler: a private Ray has none.

Its failure policy is Ray's, except that a storage fault ends the run at once
(``train.failures``).

Ray's parts are picked by their classes (``ray.train.v2`` 2.60, which setup.py pins);
``tests/test_run_trainer.py`` checks that they are still there to leave out.
"""
from __future__ import annotations

from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.failure_handling import DefaultFailurePolicy
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy

from yolor_ray.train.failures import StorageFaultsEndTheRun


class _NoAutoscaler:
    """The scaling policy's link to the autoscaling coordinator, where there is no autoscaler."""

    def maybe_send_resource_request(self, scaling_config, num_workers: int) -> None:
        pass

    def send_resource_request(self, scaling_config, num_workers: int) -> None:
        pass

    def cancel_resource_request(self) -> None:
        pass


class PrivateRayScalingPolicy(FixedScalingPolicy):
    """Ray Train's fixed-size policy, asking no autoscaler for the workers' resources."""

    def after_controller_start(self, train_run_context) -> None:
        self._coordinator_client = _NoAutoscaler()


def unused_callbacks(has_datasets: bool, private_ray: bool) -> tuple[type, ...]:
    """The classes of Ray Train's default callbacks that a run of ours leaves out."""
    return (*(() if has_datasets else (DatasetsCallback,)), *((PlacementGroupCleanerCallback,) if private_ray else ()))


class RunTrainer(TorchTrainer):
    """Ray Train's ``TorchTrainer`` without :func:`unused_callbacks`, on a private local Ray
    (``private_ray``) without the autoscaling coordinator, and with no retry of a storage fault."""

    def __init__(self, *args, private_ray: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._left_out = unused_callbacks(bool(self.datasets), private_ray)
        self._private_ray = private_ray

    def _create_default_callbacks(self):
        return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, self._left_out)]

    def _initialize_and_run_controller(self, **controller_init_kwargs):
        policy = controller_init_kwargs.get("scaling_policy")
        if self._private_ray and type(policy) is FixedScalingPolicy:
            controller_init_kwargs["scaling_policy"] = PrivateRayScalingPolicy(scaling_config=policy.scaling_config)
        failures = controller_init_kwargs.get("failure_policy")
        if type(failures) is DefaultFailurePolicy:
            controller_init_kwargs["failure_policy"] = StorageFaultsEndTheRun(failures.failure_config)
        return super()._initialize_and_run_controller(**controller_init_kwargs)
