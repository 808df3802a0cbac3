"""Shared fixtures: a small shapes dataset made once per session, the repo paths."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASELINES = sorted((REPO / "configs" / "baseline").glob("*.py"))
ATSS = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
YOLOR_ATSS = REPO / "configs" / "yolor" / "yolor_atss_r50_fpn_1x_coco.py"


def yolor_ray(*args, timeout=900, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    """The ``yolor-ray`` command in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "yolor_ray.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)

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
    MMEngine Runner: full message hub with HistoryBuffers, MultiStepLR's Counter)."""
    import subprocess
    import sys

    import mmdet

    from yolor_ray import config as cfglib
    from yolor_ray.data.coco import inspect_coco_split

    cfg = cfglib.load_config(REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py")
    cfglib.use_coco_folder(cfg, inspect_coco_split(shapes_dir, "train"), inspect_coco_split(shapes_dir, "val"))
    cfglib.make_small(cfg, 64)
    cfglib.set_epochs(cfg, 1)
    cfglib.set_batch_size(cfg, 4)
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


HONEST_EPOCHS = 10


@pytest.fixture(scope="session")
def trained_baseline(bigger_shapes, mmdet_checkpoint, tmp_path_factory) -> dict:
    """A small ATSS baseline trained to AP > 0.05 by ``yolor-ray train`` (2 workers, 10 epochs,
    with a BN probe hook): test_honest_ap checks its reported AP, the warm-started sweep of
    test_tune fine-tunes from it. Returns its run folder, the probes' folder and the output."""
    tmp_path = tmp_path_factory.mktemp("trained-baseline")
    config = config_with_user_hook(tmp_path / "atss_probe.py", ATSS, "bn_probe_hook", "BNProbeHook")
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A recognisable secret: tests search every file a run writes for it.
PLANTED_SECRET = "yolorSECRETplanted0123456789abcdefXYZ"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 HTTP endpoint on 127.0.0.1 (moto's server mode)."""
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


def s3_keys(client, bucket_name: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def config_with_user_hook(path: Path, base: Path, module: str, hook: str) -> Path:
    """A config inheriting ``base`` with a hook from a user's own module (``custom_imports``),
    as users bring them; the module must be importable where the config is loaded."""
    path.write_text(f"_base_ = {str(base)!r}\n"
                    f"custom_imports = dict(imports=['yolor_ray.registrations', {module!r}], "
                    "allow_failed_imports=False)\n"
                    f"custom_hooks = [dict(type={hook!r})]\n")
    return path


def env_with_test_modules(**extra: str) -> dict:
    """This environment plus ``extra``, with tests/ on PYTHONPATH (the test hooks' modules)."""
    return dict(os.environ, **extra,
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])))


def assert_tensorboard_scalars(run_dir: Path, epochs: int) -> None:
    """The run's TensorBoard events, read by TensorBoard's own reader: training losses and LR
    per iteration, every COCO bbox AP per epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from yolor_ray.metrics import coco_keys

    folders = {p.parent for p in run_dir.glob("logs/*/vis_data/events.out.tfevents.*")}
    assert len(folders) == 1, sorted(run_dir.rglob("*"))
    events = EventAccumulator(str(folders.pop()))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "loss_cls", "lr", *coco_keys("bbox")} <= tags, tags
    assert [e.step for e in events.Scalars("coco/bbox_mAP")] == list(range(1, epochs + 1))
    assert all(e.value > 0 for e in events.Scalars("loss"))


def logs_text(run_dir: Path) -> str:
    """Every log file of a run's ranks in its storage folder (the workers' output is there, not
    on the driver), concatenated."""
    return "\n".join(p.read_text(errors="replace") for p in sorted((run_dir / "logs").rglob("*.log")))
