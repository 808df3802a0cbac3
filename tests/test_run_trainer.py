"""What a run's TorchTrainer leaves out of Ray Train, and the progress lines' file (no Ray started)."""
import pickle

import pytest
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy, ResizeDecision
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
from ray.util.queue import Empty

from yolor_ray.train.progress import LinesFile
from yolor_ray.train.ray_cluster import PRIVATE_RAY_ENV, on_private_ray
from yolor_ray.train.trainer import PrivateRayScalingPolicy, RunTrainer


def _trainer(cls, tmp_path, **kwargs):
    return cls(lambda config: None, scaling_config=ScalingConfig(num_workers=2),
               run_config=RunConfig(name="run", storage_path=str(tmp_path)), **kwargs)


def _callback_types(trainer) -> set[type]:
    return {type(cb) for cb in trainer._create_default_callbacks()}


def test_ray_train_still_has_the_parts_a_run_leaves_out(tmp_path):
    """Ray Train (setup.py's pin) makes them for every run; an upgrade that renames them shows here."""
    assert {DatasetsCallback, PlacementGroupCleanerCallback} <= _callback_types(_trainer(TorchTrainer, tmp_path))


def test_a_run_leaves_out_the_dataset_manager_and_on_a_private_ray_the_cleaner(tmp_path):
    full = _callback_types(_trainer(TorchTrainer, tmp_path))
    on_cluster = _callback_types(_trainer(RunTrainer, tmp_path))
    assert on_cluster == full - {DatasetsCallback}  # the cleaner stays on a cluster
    assert _callback_types(_trainer(RunTrainer, tmp_path, private_ray=True)) == full - {
        DatasetsCallback, PlacementGroupCleanerCallback}


@pytest.mark.parametrize("private_ray", [True, False])
def test_only_a_private_ray_asks_no_autoscaler(monkeypatch, tmp_path, private_ray):
    seen = {}
    monkeypatch.setattr(DataParallelTrainer, "_initialize_and_run_controller",
                        lambda self, **kwargs: seen.update(kwargs))
    _trainer(RunTrainer, tmp_path, private_ray=private_ray)._initialize_and_run_controller(
        scaling_policy=FixedScalingPolicy(ScalingConfig(num_workers=2)), other="passed on")
    policy = seen["scaling_policy"]
    assert type(policy) is (PrivateRayScalingPolicy if private_ray else FixedScalingPolicy)
    assert seen["other"] == "passed on" and policy.scaling_config.num_workers == 2


def test_the_private_ray_policy_sizes_the_group_without_a_coordinator():
    policy = PrivateRayScalingPolicy(ScalingConfig(num_workers=3))
    policy.after_controller_start(train_run_context=None)  # Ray's would create and ask the coordinator actor
    decision = policy.make_decision_for_non_running_worker_group()
    assert isinstance(decision, ResizeDecision) and decision.num_workers == 3
    policy.before_controller_abort()


def test_progress_records_through_a_file(tmp_path):
    reader = LinesFile(str(tmp_path / "progress.jsonl"))
    writer = pickle.loads(pickle.dumps(reader))  # as it reaches Ray Train's controller
    with pytest.raises(Empty):
        reader.get(timeout=0.05)  # nothing written yet (no file either)
    writer.put(dict(epoch=1, loss=0.5))
    writer.put(dict(epoch=2, loss=0.25, when=object()))  # what JSON cannot hold is written as text
    with open(writer.path, "a") as f:
        f.write('{"epoch": 3')  # a line still being written waits for its end
    assert reader.get(timeout=1)["epoch"] == 1
    assert reader.get(timeout=1)["epoch"] == 2
    with pytest.raises(Empty):
        reader.get(timeout=0.05)
    with open(writer.path, "a") as f:
        f.write("}\n")
    assert reader.get(timeout=1) == {"epoch": 3}
    reader.shutdown()
    assert not (tmp_path / "progress.jsonl").exists()


def test_private_ray_is_what_its_processes_are_told(monkeypatch):
    monkeypatch.delenv(PRIVATE_RAY_ENV, raising=False)
    assert not on_private_ray()
    monkeypatch.setenv(PRIVATE_RAY_ENV, "1")
    assert on_private_ray()
