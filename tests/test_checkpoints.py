"""Checkpoints from anywhere, safely: mmdet's own tools/train.py checkpoints load under
weights_only=True with our allow-list (locally, from S3, into a Ray run of its YOLOR
variant; tests/test_honest_ap.py warm-starts a baseline run from it); anything else is
refused without being run. The checkpoint comes from conftest's ``mmdet_checkpoint``."""
from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from support.paths import ATSS, YOLOR_ATSS
from support.runs import logs_text, yolor_ray


@pytest.mark.subprocess
def test_mmdet_tools_checkpoint_loads_under_the_allow_list(mmdet_checkpoint):
    from mmengine.logging import HistoryBuffer

    from yolor_ray.engine.checkpoint import load_checkpoint_file

    # what makes it hard: torch's own weights_only load refuses it
    with pytest.raises(pickle.UnpicklingError):
        torch.load(mmdet_checkpoint, weights_only=True)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(mmdet_checkpoint)))
    assert {"builtins.getattr", "mmengine.logging.history_buffer.HistoryBuffer"} <= unsafe

    checkpoint = load_checkpoint_file(mmdet_checkpoint)
    assert checkpoint["meta"]["epoch"] == 1 and len(checkpoint["state_dict"]) > 100
    buffers = checkpoint["message_hub"]["log_scalars"]
    assert buffers and all(isinstance(b, HistoryBuffer) for b in buffers.values())
    assert buffers["train/loss"].current() > 0
    assert any("milestones" in s for s in checkpoint["param_schedulers"])


@pytest.mark.subprocess
def test_baseline_checkpoint_keys_against_baseline_and_yolor(mmdet_checkpoint, shapes_dir, tmp_path):
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import TrainSpec

    options = dict(load_from=str(mmdet_checkpoint))
    base = prepare_run(TrainSpec(config=ATSS, data_root=shapes_dir, small=True, image_size=64,
                                 storage=StorageSpec(str(tmp_path / "r")), cfg_options=options))
    assert base.checks["load_from"].endswith("keys matched")  # nothing missing, nothing unexpected
    yolor = prepare_run(TrainSpec(config=YOLOR_ATSS, data_root=shapes_dir, small=True, image_size=64,
                                  storage=StorageSpec(str(tmp_path / "r")), load_from=str(mmdet_checkpoint)))
    summary = yolor.checks["load_from"]
    # only the implicit tensors are missing (they keep their init)
    assert "implicit keys missing (left at their init)" in summary and "; keys missing" not in summary
    assert "unexpected" not in summary
    assert not (tmp_path / "r").exists()


@pytest.mark.subprocess
def test_load_from_that_does_not_fit_the_model_is_refused(mmdet_checkpoint, shapes_dir, tmp_path):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--storage",
                     tmp_path / "r", "--load-from", tmp_path / "missing.pth")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "checkpoint '" in proc.stderr and "missing.pth' not found" in proc.stderr
    torch.save(dict(state_dict=dict(unrelated=torch.zeros(2))), tmp_path / "other.pth")
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--storage",
                     tmp_path / "r", "--cfg-options", f"load_from={tmp_path / 'other.pth'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "does not fit ATSS: none of its keys match the model" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_load_from_a_url_or_a_missing_s3_key_is_refused_before_ray(shapes_dir, tmp_path, bucket, s3_endpoint):
    """mmdet's configs often name a model-zoo URL in load_from: refused (its loader would
    bypass the allow-list), as is an s3 key that is not there, in one line each."""
    from yolor_ray.engine.checkpoint import CheckpointError
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import TrainSpec

    def prepare(load_from):
        return prepare_run(TrainSpec(config=ATSS, data_root=shapes_dir, small=True, image_size=64,
                                     storage=StorageSpec(str(tmp_path / "r"), s3_endpoint), load_from=load_from))

    url = "https://download.openmmlab.com/mmdetection/v2.0/atss/atss_r50_fpn_1x_coco.pth"
    with pytest.raises(CheckpointError, match=r"only a local path or s3://bucket/key is supported \(download other"):
        prepare(url)
    name, _ = bucket
    with pytest.raises(CheckpointError) as raised:
        prepare(f"s3://{name}/baselines/nope.pth")
    assert str(raised.value).startswith(f"cannot download checkpoint 's3://{name}/baselines/nope.pth' from "
                                        f"{s3_endpoint}: ") and "404" in str(raised.value)
    assert not (tmp_path / "r").exists()


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_crafted_pickle_is_refused_without_running_it(tmp_path):
    from yolor_ray.engine.checkpoint import CheckpointError, load_checkpoint_file

    marker = tmp_path / "ran"
    torch.save(dict(state_dict={}, meta=dict(x=_RunsACommand(marker))), tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil.pth' holds posix.system, which yolor-ray does not unpickle"):
        load_checkpoint_file(tmp_path / "evil.pth")
    # a bare pickle (not torch's zip format) too
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_RunsACommand(marker), protocol=2))
    with pytest.raises(CheckpointError, match=r"posix.system"):
        load_checkpoint_file(tmp_path / "evil.pkl")
    assert not marker.exists()


class _Getattr:
    """Pickles as builtins.getattr(owner, name), as a bound method's protocol-2 pickle does."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


def test_getattr_reaches_only_history_buffer_statistics(tmp_path):
    from mmengine.logging import HistoryBuffer

    from yolor_ray.engine.checkpoint import CheckpointError, load_checkpoint_file

    torch.save(dict(f=_Getattr(HistoryBuffer, "mean")), tmp_path / "ok.pth")
    assert load_checkpoint_file(tmp_path / "ok.pth")["f"] is HistoryBuffer.mean
    for owner, name in ((HistoryBuffer, "update"), (HistoryBuffer, "__init__"), (OrderedDict, "fromkeys")):
        torch.save(dict(f=_Getattr(owner, name)), tmp_path / "bad.pth")
        with pytest.raises(CheckpointError, match=rf"getattr\({owner.__qualname__}, '{name}'\)"):
            load_checkpoint_file(tmp_path / "bad.pth")


def test_statistic_methods_a_checkpoint_brings_are_dropped(tmp_path, monkeypatch):
    from mmengine.logging import HistoryBuffer

    from yolor_ray.engine.checkpoint import load_checkpoint_file

    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    # a crafted file whose buffer names OrderedDict (an allowed type) as its 'mean'
    monkeypatch.setattr(HistoryBuffer, "_statistics_methods", dict(mean=OrderedDict))
    torch.save(dict(buffer=buffer), tmp_path / "swapped.pth")
    monkeypatch.undo()
    own = dict(HistoryBuffer._statistics_methods)
    loaded = load_checkpoint_file(tmp_path / "swapped.pth")["buffer"]
    assert HistoryBuffer._statistics_methods == own and own["mean"] is HistoryBuffer.mean
    assert loaded.statistics("mean") == 2.0


def test_numpy_values_load_under_numpy_2_and_1_names(tmp_path):
    from yolor_ray.engine.checkpoint import load_checkpoint_file

    buffer = io.BytesIO()
    # the legacy (non-zip) format keeps the pickle's GLOBAL names as plain text
    torch.save(dict(x=np.float64(1.5), a=np.arange(3, dtype=np.int32), d=np.dtype("float32")), buffer,
               _use_new_zipfile_serialization=False)
    numpy2 = buffer.getvalue()
    assert b"numpy._core.multiarray" in numpy2
    numpy1 = numpy2.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    for name, data in (("np2.pth", numpy2), ("np1.pth", numpy1)):
        (tmp_path / name).write_bytes(data)
        loaded = load_checkpoint_file(tmp_path / name)
        assert loaded["x"] == 1.5 and loaded["a"].tolist() == [0, 1, 2] and loaded["d"] == np.dtype("float32")


def test_not_a_checkpoint(tmp_path):
    from yolor_ray.engine.checkpoint import CheckpointError, load_checkpoint_file

    (tmp_path / "notes.pth").write_text("just some text\n")
    with pytest.raises(CheckpointError, match=r"notes.pth' is not a PyTorch checkpoint"):
        load_checkpoint_file(tmp_path / "notes.pth")
    with pytest.raises(CheckpointError, match=r"not found"):
        load_checkpoint_file(tmp_path / "nothing.pth")


@pytest.mark.ray
@pytest.mark.subprocess
def test_s3_checkpoint_into_a_ray_run_of_the_yolor_variant(mmdet_checkpoint, shapes_dir, tmp_path, bucket,
                                                           s3_endpoint):
    """mmdet's baseline checkpoint, from S3 (our boto3 download, the run's endpoint), warm-starts
    a Ray Train run of its YOLOR variant: only the implicit keys are missing."""
    import json

    name, client = bucket
    client.upload_file(str(mmdet_checkpoint), name, "baselines/atss_epoch_1.pth")
    storage = tmp_path / "results"
    proc = yolor_ray("train", YOLOR_ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--epochs", 1,
                     "--batch-size", 4, "--storage", storage, "--name", "warm", "--samples", 0,
                     "--load-from", f"s3://{name}/baselines/atss_epoch_1.pth", "--s3-endpoint", s3_endpoint)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    output = proc.stdout + proc.stderr + logs_text(storage / "warm")  # the workers' output: in the run's logs
    assert "implicit keys missing (left at their init)" in proc.stderr  # the driver's check
    assert "Load checkpoint from yolor-trusted://" in output  # the worker's load, through our loader
    marker = "missing keys in source state_dict:"
    missing = next(line for line in output.splitlines() if marker in line).split(marker, 1)[1].split(",")
    assert len(missing) == 8 and all("implicit_" in key for key in missing)  # 5 FPN levels, 3 ATSS outputs
    assert "unexpected key in source state_dict" not in output
    assert json.loads((storage / "warm" / "results.json").read_text())["history"][0]["epoch"] == 1
