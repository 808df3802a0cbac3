"""Which device a worker trains on (CPU unit tests of our own choice; Ray's getters patched)."""
import pytest
import ray
import ray.train.torch
import torch

from yolor_ray.train.devices import NoAssignedGPUError, actor_gpu, assigned_device, visible_index


@pytest.mark.parametrize("gpu_id, visible, index", [
    (3, "3", 0),  # Ray's default: the actor sees only its own GPU
    ("3", "2,3", 1),  # a node's workers share the union of their GPUs
    (1, "3, 1,0", 1),  # the list's order, not the ids' order
    (3, None, 3),  # RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES: the node's own numbering
    (2, "", 2),
    (2, "NoDevFiles", 2),
    ("GPU-ab12", "GPU-cd34,GPU-ab12", 1),  # GPUs named by UUID
])
def test_visible_index(gpu_id, visible, index):
    assert visible_index(gpu_id, visible) == index


def test_a_gpu_hidden_from_the_process_is_an_error():
    with pytest.raises(NoAssignedGPUError, match="GPU 5.*hides it"):
        visible_index(5, "2,3")


def test_an_actor_trains_on_its_lowest_assigned_gpu():
    assert actor_gpu([3, 2], "2,3") == torch.device("cuda", 0)
    assert actor_gpu(["7"], "7") == torch.device("cuda", 0)
    with pytest.raises(NoAssignedGPUError, match="assigned no GPU"):
        actor_gpu([], "0")


def test_a_ray_train_worker_trains_on_ray_trains_device(monkeypatch):
    # Ray Train's own answer, which need not be cuda:{local_rank}
    monkeypatch.setattr(ray.train.torch, "get_device", lambda: torch.device("cuda", 1))
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: pytest.fail("a Train worker asks Ray Train"))
    assert assigned_device(use_gpu=True, in_train_worker=True) == torch.device("cuda", 1)


def test_a_tune_actor_trains_on_the_gpu_ray_gave_it(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [6])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    monkeypatch.setattr(ray.train.torch, "get_device", lambda: pytest.fail("a Tune actor is no Train worker"))
    assert assigned_device(use_gpu=True, in_train_worker=False) == torch.device("cuda", 1)


def test_cpu_runs_train_on_the_cpu(monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: pytest.fail("no GPU asked for"))
    for in_train_worker in (True, False):
        assert assigned_device(use_gpu=False, in_train_worker=in_train_worker) == torch.device("cpu")


@pytest.mark.parametrize("in_train_worker", [True, False])
def test_the_worker_sets_the_device_ray_assigned(monkeypatch, tmp_path, in_train_worker):
    """The worker hands torch the device chosen here, not its local rank."""
    import yolor_ray.train.worker as worker

    class Stop(Exception):
        pass

    calls = []

    def set_device(device):
        calls.append(device)
        raise Stop  # the rest is training

    def assigned(use_gpu, in_train_worker):
        calls.append((use_gpu, in_train_worker))
        return torch.device("cuda", 1)

    monkeypatch.setattr(worker, "assigned_device", assigned)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    with pytest.raises(Stop):
        worker._train(worker.WorkerConfig(cfg={}, run_name="r", storage=None, use_gpu=True), None, None, 0,
                      in_train_worker, str(tmp_path), tmp_path / "output.log")
    assert calls == [(True, in_train_worker), torch.device("cuda", 1)]
