"""Runs in object storage: a real S3 HTTP endpoint on 127.0.0.1 (moto), real Ray, real ATSS."""
import json
import os
import subprocess
import sys

import pytest

from yolor_ray.storage import StorageError, StorageSpec

from support.net import TCPProxy, free_port
from support.paths import ATSS, REPO
from support.runs import assert_tensorboard_scalars, yolor_ray
from support.s3 import PLANTED_SECRET, s3_keys
from support.wandb_records import offline_run


@pytest.mark.parametrize("uri, match", [
    ("s3://", "not a valid bucket name"),
    ("s3://Bad_Bucket/x", "not a valid bucket name"),
    ("s3://bucket//x", "empty path segment"),
    ("s3://bucket/x?endpoint_override=1.2.3.4", "no query or fragment"),
    ("gs://bucket/x", "unsupported storage 'gs://bucket/x'"),
    ("", "empty string"),
])
def test_malformed_storage_uris(uri, match):
    with pytest.raises(StorageError, match=match):
        StorageSpec(uri)


def test_malformed_endpoint():
    with pytest.raises(StorageError, match="malformed S3 endpoint 'localhost:9000'"):
        StorageSpec("s3://bucket/x", endpoint="localhost:9000")


def test_spec_parts():
    spec = StorageSpec("s3://my-bucket/a/b/")
    assert (spec.bucket, spec.prefix, spec.is_s3) == ("my-bucket", "a/b", True)
    assert not StorageSpec("./results").is_s3


@pytest.mark.ray
@pytest.mark.subprocess
def test_train_to_s3_and_no_secret_anywhere(bucket, s3_endpoint, shapes_dir, tmp_path, ray_tmpdir):
    """Also the trackers: MLflow on a local SQLite store and W&B offline (its API key, the planted
    secret, must land nowhere); the run pulled back to read its TensorBoard and W&B files."""
    name, client = bucket
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, MLFLOW_TRACKING_URI="sqlite:///mlflow.db", MLFLOW_EXPERIMENT_NAME="s3-runs",
               WANDB_MODE="offline", WANDB_PROJECT="yolor-s3", WANDB_API_KEY=PLANTED_SECRET, WANDB_SILENT="true",
               RAY_TMPDIR=str(ray_tmpdir))
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 128, "--epochs", 2,
                     "--storage", f"s3://{name}/runs", "--s3-endpoint", s3_endpoint, "--name", "atss-s3",
                     "--samples", 1, "--tracker", "mlflow", "--tracker", "wandb", cwd=work, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    keys = s3_keys(client, name)
    for file in ("results.json", "run.json", "config.py", "curves.png", "samples.png",
                 "checkpoint_manager_snapshot.json"):
        assert f"runs/atss-s3/{file}" in keys, keys
    assert any(k.startswith("runs/atss-s3/checkpoint_") and k.endswith("/checkpoint.pth") for k in keys)
    record = json.loads(client.get_object(Bucket=name, Key="runs/atss-s3/results.json")["Body"].read())
    assert record["location"] == f"s3://{name}/runs/atss-s3"
    assert record["restarts"] == 0 and 0 <= record["metrics"]["coco/bbox_mAP"] <= 1
    # Nothing else landed locally: MLflow's store and its artifacts (the experiment's default root).
    assert "mlflow.db" in {p.name for p in work.iterdir()} <= {"mlflow.db", "mlruns"}
    # The planted secret is in no object, no output and no Ray log of this run.
    for key in keys:
        assert PLANTED_SECRET.encode() not in client.get_object(Bucket=name, Key=key)["Body"].read(), key
    assert PLANTED_SECRET not in proc.stdout + proc.stderr
    for path in run_ray_session_files(ray_tmpdir):
        assert PLANTED_SECRET.encode() not in path.read_bytes(), path

    # yolor-ray pull: the run's folder from S3 to a local one, TensorBoard's reader on its events.
    pulled = yolor_ray("pull", f"s3://{name}/runs/atss-s3", tmp_path / "pulled", "--s3-endpoint", s3_endpoint)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    local = tmp_path / "pulled"
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == sorted(
        k.removeprefix("runs/atss-s3/") for k in keys if not k.endswith("/"))  # not Ray's folder markers
    assert_tensorboard_scalars(local, epochs=2)
    missing = yolor_ray("pull", f"s3://{name}/runs/no-such-run", tmp_path / "nothing", "--s3-endpoint", s3_endpoint)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        f"yolor-ray: error: no run or sweep at 's3://{name}/runs/no-such-run': nothing is stored there; name a run "
        "or sweep folder, e.g. s3://bucket/prefix/NAME")
    assert not (tmp_path / "nothing").exists()

    # W&B offline: its run files, written in rank 0's log folder, came with the logs.
    offline = [p for p in local.glob("logs/*/vis_data/wandb/offline-run-*") if p.is_dir()]
    assert len(offline) == 1, sorted(local.rglob("*"))
    (run_file,) = offline[0].glob("run-*.wandb")
    wandb_run = offline_run(run_file)
    assert (wandb_run["name"], wandb_run["project"]) == ("atss-s3", "yolor-s3")
    assert wandb_run["config"]["yolor_ray"]["model"] == "ATSS" and wandb_run["config"]["yolor_ray"]["epochs"] == "2"
    epochs_ap = [row["coco/bbox_mAP"] for row in wandb_run["history"] if "coco/bbox_mAP" in row]
    assert len(epochs_ap) == 2 and all(0 <= ap <= 1 for ap in epochs_ap)
    assert all(row["loss"] > 0 for row in wandb_run["history"] if "loss" in row)
    assert not [p for p in local.rglob("*") if p.is_file() and PLANTED_SECRET.encode() in p.read_bytes()]

    # MLflow: one run named after ours, its parameters and per-epoch metrics, read back.
    import mlflow

    tracking = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = tracking.get_experiment_by_name("s3-runs")
    (run,) = tracking.search_runs([experiment.experiment_id])
    assert run.info.run_name == "atss-s3" and run.info.status == "FINISHED"
    assert run.data.params["model"] == "ATSS" and run.data.params["epochs"] == "2"
    assert run.data.params["yolor"] == "False"
    assert [m.step for m in tracking.get_metric_history(run.info.run_id, "coco/bbox_mAP")] == [1, 2]
    assert tracking.get_metric_history(run.info.run_id, "loss")
    assert PLANTED_SECRET not in json.dumps([run.data.params, run.data.tags])


@pytest.fixture
def ray_tmpdir():
    """An empty folder for a run's local Ray (``RAY_TMPDIR``: Ray's temp dir is its ``ray/``), so
    that the run's own session is the one there. Short: Ray's unix sockets live under it."""
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="yrs-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run_ray_session_files(ray_tmpdir) -> list:
    """Every file of the one Ray session a run started under ``ray_tmpdir`` (its driver's,
    raylet's and workers' logs); fails when there is none, or more than one."""
    sessions = [p for p in (ray_tmpdir / "ray").glob("session_*") if p.is_dir() and not p.is_symlink()]
    assert len(sessions) == 1, f"the run's own Ray session: expected one under {ray_tmpdir / 'ray'}, got {sessions}"
    files = [p for p in sessions[0].rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    logs = {p.name for p in files if p.parent == sessions[0] / "logs"}
    assert {"raylet.out", "gcs_server.out"} <= logs and any(n.startswith("worker-") for n in logs), sorted(logs)
    return files


def _rejected(proc, match):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert match in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and PLANTED_SECRET not in proc.stderr


@pytest.mark.subprocess
def test_missing_bucket(s3_endpoint, aws_env, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", "s3://no-such-bucket-here/runs",
                     "--s3-endpoint", s3_endpoint)
    _rejected(proc, "bucket 'no-such-bucket-here' does not exist")


@pytest.mark.subprocess
def test_unreachable_endpoint(aws_env, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", "s3://some-bucket/runs",
                     "--s3-endpoint", f"http://127.0.0.1:{free_port()}")
    _rejected(proc, "cannot reach the S3 endpoint")


@pytest.mark.subprocess
def test_pull_from_an_unreachable_endpoint_says_what_table_says(aws_env, tmp_path):
    """One line, exit 2, the same as ``table`` (and ``train``) give for it, and nothing made locally."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    pulled = yolor_ray("pull", "s3://some-bucket/runs/run-1", tmp_path / "pulled", "--s3-endpoint", endpoint)
    _rejected(pulled, f"yolor-ray: error: cannot reach the S3 endpoint for s3://some-bucket at {endpoint}: "
                      "EndpointConnectionError")
    table = yolor_ray("table", "s3://some-bucket/runs/run-1", "--s3-endpoint", endpoint)
    assert pulled.stderr == table.stderr and table.returncode == 2
    assert not (tmp_path / "pulled").exists()


@pytest.mark.subprocess
def test_pull_without_credentials(s3_endpoint, aws_env, tmp_path):
    """No key anywhere in the AWS chain (environment, shared files; no instance metadata asked)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    pulled = yolor_ray("pull", "s3://some-bucket/runs/run-1", tmp_path / "pulled", "--s3-endpoint", s3_endpoint,
                       env=env)
    _rejected(pulled, f"yolor-ray: error: no AWS credentials found for s3://some-bucket at {s3_endpoint}: set them in "
                      "the standard AWS chain")
    assert len(pulled.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pulled").exists()


@pytest.mark.subprocess
def test_wrong_credentials(aws_env, shapes_dir, tmp_path):
    """A second endpoint that checks credentials: moto with IAM auth on and no known keys."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", "s3://some-bucket/runs",
                         "--s3-endpoint", f"http://127.0.0.1:{port}")
        _rejected(proc, "denied (403): check the AWS credentials in use")
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.subprocess
def test_malformed_uri_on_the_command_line(aws_env, shapes_dir, tmp_path):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", "s3://UPPER/runs", cwd=tmp_path)
    _rejected(proc, "'UPPER' is not a valid bucket name")
    assert list(tmp_path.iterdir()) == []


def _wait_for_port(port, timeout_s=20.0):
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.mark.ray
@pytest.mark.subprocess
def test_outage_during_checkpoint_uploads_leaves_only_whole_checkpoints(bucket, s3_endpoint, shapes_dir, tmp_path):
    """The S3 endpoint goes away for 12 s while checkpoints upload, then comes back.
    The run retries or fails with a clear error; every checkpoint left is whole."""
    import time

    from yolor_ray.engine.checkpoint import load_checkpoint_file

    name, client = bucket
    proxy = TCPProxy(int(s3_endpoint.rsplit(":", 1)[1]), free_port())
    proxy.start()
    args = ["train", ATSS, "--data", shapes_dir, "--small", "--image-size", 128, "--epochs", 6, "--storage",
            f"s3://{name}/runs", "--s3-endpoint", f"http://127.0.0.1:{proxy.port}", "--name", "outage",
            "--samples", 0, "--max-failures", 3]
    proc = subprocess.Popen([sys.executable, "-m", "yolor_ray.cli", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not any(k.endswith("/checkpoint.pth") for k in s3_keys(client, name)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.2)
        proxy.cut()
        time.sleep(12)
        proxy.start()
        output, _ = proc.communicate(timeout=600)
    finally:
        proxy.cut()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 1), output[-3000:]
    print(f"outage: exit {proc.returncode}, {output.count('Retrying')} retries logged, "
          f"partial checkpoints removed: {output.count('removing partial checkpoint')}; "
          f"last line: {output.strip().splitlines()[-1][:400]}")
    if proc.returncode == 1:
        message = output.split("yolor-ray: training failed: ")[-1]
        assert "--name outage resumes from the last one" in message and "Traceback" not in message
    else:
        assert "runs/outage/results.json" in s3_keys(client, name)
    keys = s3_keys(client, name)
    folders = {k.split("/")[2] for k in keys if k.startswith("runs/outage/checkpoint_") and k.count("/") == 3}
    assert folders, keys
    for folder in folders:
        assert {f"runs/outage/{folder}/checkpoint.pth", f"runs/outage/{folder}/run_state.json"} <= set(keys), folder
        body = client.get_object(Bucket=name, Key=f"runs/outage/{folder}/checkpoint.pth")["Body"].read()
        local = tmp_path / f"{folder}.pth"
        local.write_bytes(body)
        assert "state_dict" in load_checkpoint_file(local)  # whole: it loads
