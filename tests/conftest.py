"""Shared fixtures (data made once per session, trained checkpoints, an S3 endpoint) and the
guard of the test tiers (support/tiers.py). Helpers live in the ``support`` package."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.net import free_port
from support.paths import ATSS
from support.runs import HONEST_EPOCHS, config_with_user_hook, env_with_test_modules, logs_text, yolor_ray
from support.s3 import PLANTED_SECRET
from support.tiers import pytest_configure, pytest_runtest_call, pytest_runtest_setup  # noqa: F401 (the guard)

# Tests run on CPU with few cores: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    from yolor_ray.data.shapes import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", ShapesSpec(num_train=16, num_val=8, seed=1,
                                                                              image_size=128))


@pytest.fixture(scope="session")
def mmdet_checkpoint(shapes_dir, tmp_path_factory) -> Path:
    """epoch_1.pth of a small ATSS trained one epoch by mmdet's own tools/train.py (a plain
    MMEngine Runner: full message hub with HistoryBuffers, MultiStepLR's Counter), in a
    subprocess (tests using it are marked ``subprocess``)."""
    import subprocess
    import sys

    import mmdet

    from yolor_ray.config.edits import make_small, set_batch_size, set_epochs, use_coco_folder
    from yolor_ray.config.load import load_config
    from yolor_ray.data.coco import inspect_coco_split

    cfg = load_config(ATSS)
    use_coco_folder(cfg, inspect_coco_split(shapes_dir, "train"), inspect_coco_split(shapes_dir, "val"))
    make_small(cfg, 64)
    set_epochs(cfg, 1)
    set_batch_size(cfg, 4)
    cfg.default_hooks.checkpoint.interval = 1
    work = tmp_path_factory.mktemp("mmdet-tools-train")
    cfg.dump(str(work / "atss_small.py"))
    tools_train = Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py"
    proc = subprocess.run([sys.executable, str(tools_train), str(work / "atss_small.py"), "--work-dir", str(work)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "epoch_1.pth"


@pytest.fixture(scope="session")
def bigger_shapes(tmp_path_factory) -> Path:
    from yolor_ray.data.shapes import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("data") / "shapes96", ShapesSpec(num_train=96, num_val=16, seed=2,
                                                                                image_size=128))


@pytest.fixture(scope="session")
def trained_baseline(bigger_shapes, mmdet_checkpoint, tmp_path_factory) -> dict:
    """A small ATSS baseline trained to AP > 0.05 by ``yolor-ray train`` (2 workers, 10 epochs,
    with a BN probe hook): test_honest_ap checks its reported AP, the warm-started sweep of
    test_tune fine-tunes from it. Returns its run folder, the probes' folder and the output.
    Starts Ray in a subprocess (tests using it are marked ``ray`` and ``subprocess``)."""
    tmp_path = tmp_path_factory.mktemp("trained-baseline")
    config = config_with_user_hook(tmp_path / "atss_probe.py", ATSS, "support.bn_probe_hook", "BNProbeHook")
    probes = tmp_path / "bn"
    probes.mkdir()
    env = env_with_test_modules(YOLOR_TEST_BN=str(probes))
    storage = tmp_path / "results"
    proc = yolor_ray("train", config, "--data", bigger_shapes, "--small", "--image-size", 128, "--epochs",
                     HONEST_EPOCHS, "--batch-size", 4, "--num-workers", 2, "--storage", storage, "--name", "honest",
                     "--samples", 0, "--keep-checkpoints", 1,
                     # a warm start from mmdet's tools/train.py checkpoint of the same small ATSS
                     # and, from near scratch, 2x the LR, dropped once near the end (AP well above 0.05)
                     "--cfg-options", "optim_wrapper.optimizer.lr=0.02", "param_scheduler.1.milestones=[9]",
                     f"load_from={mmdet_checkpoint}", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # every rank's log, in the run's storage (the driver prints one line per epoch)
    return dict(run=storage / "honest", probes=probes, output=logs_text(storage / "honest"), data=bigger_shapes)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 HTTP endpoint on 127.0.0.1 (moto's server mode, in a thread of this process)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    """Credentials through the standard chain (environment), with the planted secret."""
    env = dict(AWS_ACCESS_KEY_ID="AKIATESTYOLORRAY", AWS_SECRET_ACCESS_KEY=PLANTED_SECRET,
               AWS_DEFAULT_REGION="us-east-1")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def bucket(s3_endpoint, aws_env):
    """A fresh bucket; returns (name, boto3 client)."""
    import uuid

    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"yolor-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name, client


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread while a module's tests run (``pytestmark = usefixtures('one_thread')``).

    On 2 shared cores, torch's OpenMP pool of 2 spins against the other processes: a
    small detector step measured 30x slower than with one thread.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

