"""`ray job submit` of jobs/train.py to a real local Ray head with token auth on."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.fake_cluster import local_ray_head
from support.paths import REPO

pytestmark = [pytest.mark.ray, pytest.mark.subprocess]

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture
def ray_head():
    """A Ray head on loopback, token auth on; yields (dashboard address, client env). Teardown
    stops this head's processes only (``ray stop`` would stop every Ray on the machine)."""
    with local_ray_head(num_cpus=2) as head:
        yield head.dashboard, head.env


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

    # A head that has just started may not have its job agent yet; Ray then refuses with
    # "No available agent ... try again later" (seen on a loaded machine), and so do we.
    deadline = time.monotonic() + 120
    while True:
        submit = subprocess.run([RAY, "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--",
                                 *entrypoint], env=env, capture_output=True, text=True, timeout=900)
        if "No available agent" not in submit.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    job_id = next(line.split("'")[1] for line in submit.stdout.splitlines() if "Job '" in line)
    status = subprocess.run([RAY, "job", "status", "--address", dashboard, job_id], env=env, capture_output=True,
                            text=True, timeout=120)
    assert f"Job '{job_id}' succeeded" in status.stdout, status.stdout + status.stderr

    record = json.loads((storage / "submitted" / "results.json").read_text())
    assert record["world_size"] == 1 and record["epochs"] == 1
    assert 0.0 <= record["metrics"]["coco/bbox_mAP"] <= 1.0
