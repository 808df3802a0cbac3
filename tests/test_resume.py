"""Resume after failures: a worker process killed by pid, and a driver killed then re-run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.paths import ATSS, REPO
from support.runs import logs_text, yolor_ray

EPOCHS = 4


def _start(shapes_dir, storage, name):
    args = ["train", ATSS, "--data", shapes_dir, "--small", "--image-size", 128, "--epochs", EPOCHS,
            "--storage", storage, "--name", name, "--samples", 0, "--max-failures", 2]
    return subprocess.Popen([sys.executable, "-m", "yolor_ray.cli", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_checkpoint(run_dir: Path, proc, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snapshot = run_dir / "checkpoint_manager_snapshot.json"
        # registered with Ray (in its snapshot), not only copied
        if snapshot.exists() and "checkpoint_" in snapshot.read_text():
            return
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    raise TimeoutError("no checkpoint appeared")


def _train_worker_pids(driver_pid: int):
    """Ray Train worker processes of this driver's private Ray (not any other Ray here)."""
    out = subprocess.run(["pgrep", "-f", "^ray::RayTrainWorker"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split() if driver_pid in _ancestors(int(pid))]


def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        found.add(pid)
    return found


def _check_complete(run_dir: Path, restarts: int):
    record = json.loads((run_dir / "results.json").read_text())
    assert [h["epoch"] for h in record["history"]] == list(range(1, EPOCHS + 1))
    assert record["epochs"] == EPOCHS and record["restarts"] == restarts
    # Every checkpoint in storage is whole: it holds both files.
    for ckpt in (p for p in run_dir.glob("checkpoint_*") if p.is_dir()):
        assert {p.name for p in ckpt.iterdir()} >= {"checkpoint.pth", "run_state.json"}, ckpt
    return record


@pytest.mark.ray
@pytest.mark.subprocess
def test_killed_worker_resumes_from_last_checkpoint(shapes_dir, tmp_path):
    storage, name = tmp_path / "results", "killed-worker"
    proc = _start(shapes_dir, storage, name)
    try:
        _wait_for_checkpoint(storage / name, proc)
        pids = _train_worker_pids(proc.pid)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-3000:]
    _check_complete(storage / name, restarts=1)
    assert "restarts 1" in output  # the driver's epoch line after the restart
    assert "resumed epoch: 1" in logs_text(storage / name)  # the restarted worker's log, in storage


@pytest.mark.ray
@pytest.mark.subprocess
def test_driver_killed_and_run_again_continues(shapes_dir, tmp_path):
    storage, name = tmp_path / "results", "killed-driver"
    proc = _start(shapes_dir, storage, name)
    try:
        _wait_for_checkpoint(storage / name, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (storage / name / "results.json").exists()
    time.sleep(2)
    again = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 128, "--epochs", EPOCHS,
                      "--storage", storage, "--name", name, "--samples", 0)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming" in again.stderr + again.stdout
    _check_complete(storage / name, restarts=1)


@pytest.mark.subprocess
def test_resume_with_another_config_is_refused(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    run = storage / "taken"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(dict(config="other.py", fingerprint="0123456789abcdef")))
    before = sorted(p.name for p in run.iterdir())
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--storage", storage, "--name", "taken")
    assert proc.returncode == 2
    assert "belongs to a different config ('other.py'" in proc.stderr
    assert sorted(p.name for p in run.iterdir()) == before


def test_sweep_removes_checkpoints_ray_never_registered(tmp_path):
    from yolor_ray.storage import StorageSpec, open_storage
    from yolor_ray.train.checkpoints import remove_partial_checkpoints

    run = tmp_path / "run"
    for folder in ("checkpoint_a", "checkpoint_b"):
        (run / folder).mkdir(parents=True)
        (run / folder / "checkpoint.pth").write_bytes(b"x")
    # Ray Train 2.60's own record of a run with one registered checkpoint
    registered = dict(version=0, checkpoint_dir_name="checkpoint_a", metrics=dict(epoch=1))
    (run / "checkpoint_manager_snapshot.json").write_text(json.dumps(dict(
        ray_version="2.60.0", checkpoint_results=[registered], checkpoint_report_indices=[0],
        latest_checkpoint_result=registered, pending_training_results=[], pending_validation_specs=[],
        current_report_index=1, validated_checkpoint_dir_names=[], timed_out_validation_checkpoint_dir_names=[],
        failed_validation_checkpoint_dir_names=[])))
    assert remove_partial_checkpoints(open_storage(StorageSpec(str(tmp_path))), "run") == ["checkpoint_b"]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint_a", "checkpoint_manager_snapshot.json"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_in_process_trial_resumes_from_its_furthest_whole_checkpoint(where, tmp_path, request):
    """Tune's checkpoint folders of a killed 1-worker trial: epoch 2's upload was cut short
    (its checkpoint file shorter than its run state says), epoch 3's has no checkpoint file
    yet (S3 shows objects one by one). The trial resumes from epoch 1; both are removed."""
    from yolor_ray.paired.checkpoints import latest_stored_checkpoint
    from yolor_ray.records import RunState
    from yolor_ray.storage import StorageSpec, open_storage

    if where == "s3":
        name, _ = request.getfixturevalue("bucket")
        spec = StorageSpec(f"s3://{name}/sweeps", request.getfixturevalue("s3_endpoint"))
    else:
        spec = StorageSpec(str(tmp_path / "sweeps"))
    storage = open_storage(spec)
    weights = b"w" * 1000
    for folder, epochs, stored in [("checkpoint_000000", 1, weights), ("checkpoint_000001", 2, weights[:600]),
                                   ("checkpoint_000002", 3, None)]:
        state = RunState(history=[dict(epoch=e) for e in range(1, epochs + 1)], checkpoint_bytes=len(weights))
        storage.write_bytes(state.to_json().encode(), "trial_1", folder, "run_state.json")
        if stored is not None:
            storage.write_bytes(stored, "trial_1", folder, "checkpoint.pth")
    assert latest_stored_checkpoint(spec, "trial_1") == "checkpoint_000000"
    assert storage.list_dirs("trial_1") == ["checkpoint_000000"]
    assert storage.read_bytes("trial_1", "checkpoint_000000", "checkpoint.pth") == weights
