"""`ray job submit` of jobs/train.py to a real local Ray head with token auth on."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, free_port

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture
def ray_head():
    """A Ray head on loopback, token auth on; yields (dashboard address, client env)."""
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env.pop("RAY_ADDRESS", None)
    dashboard = f"http://127.0.0.1:{free_port()}"
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(free_port()),
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", dashboard.rsplit(":", 1)[1],
                    "--num-cpus", "2", "--disable-usage-stats"], env=env, check=True, capture_output=True, timeout=120)
    try:
        yield dashboard, env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_job_submit_trains_and_results_land_in_storage(ray_head, shapes_dir, tmp_path):
    dashboard, env = ray_head
    storage = tmp_path / "results"
    entrypoint = [sys.executable, "jobs/train.py", "configs/baseline/atss_r50_fpn_1x_coco.py", "--data",
                  str(shapes_dir), "--small", "--image-size", "128", "--epochs", "1", "--storage", str(storage),
                  "--name", "submitted", "--samples", "1"]

    no_token = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"}
    refused = subprocess.run([RAY, "job", "list", "--address", dashboard], env=no_token, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0  # token auth is on: no token, no access

    submit = subprocess.run([RAY, "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--",
                             *entrypoint], env=env, capture_output=True, text=True, timeout=900)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    job_id = next(line.split("'")[1] for line in submit.stdout.splitlines() if "Job '" in line)
    status = subprocess.run([RAY, "job", "status", "--address", dashboard, job_id], env=env, capture_output=True,
                            text=True, timeout=120)
    assert f"Job '{job_id}' succeeded" in status.stdout, status.stdout + status.stderr

    record = json.loads((storage / "submitted" / "results.json").read_text())
    assert record["world_size"] == 1 and record["epochs"] == 1
    assert 0.0 <= record["metrics"]["coco/bbox_mAP"] <= 1.0
