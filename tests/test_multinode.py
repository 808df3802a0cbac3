"""Two nodes without a shared disk (tests/two_nodes.py): training and COCO evaluation across
nodes, a lost node, data missing on one node, logs in storage, a sweep over both nodes.

Storage is the S3 endpoint, as on a real cluster. Runs are tiny (64 px, a few images); one
2-node run is shared by the checks that can read it.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import time

import boto3
import pytest

from support.paths import ATSS, REPO
from support.runs import config_with_user_hook
from support.s3 import s3_keys
from support.two_nodes import HEAD_IP, NODE2_IP, WORKER_RESOURCE, two_node_cluster

CREDENTIALS = dict(AWS_ACCESS_KEY_ID="AKIATESTYOLORRAY", AWS_SECRET_ACCESS_KEY="multinode-test-secret",
                   AWS_DEFAULT_REGION="us-east-1")
ONE_PER_NODE = ["--worker-resources", f"{WORKER_RESOURCE}=1"]


@pytest.fixture(scope="module")
def cluster(s3_endpoint):
    # Every node has the credentials, as an instance profile would give them.
    with two_node_cluster(extra_env=CREDENTIALS) as running:
        yield running


@pytest.fixture(scope="module")
def s3(s3_endpoint, cluster):
    """(bucket, boto3 client) for this module's runs."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket="multinode")
    return "multinode", client


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from yolor_ray.data.shapes import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("multinode") / "shapes",
                       ShapesSpec(num_train=16, num_val=4, seed=5, image_size=64))


def on_cluster(cluster, s3_endpoint, *args, timeout=900, **popen):
    """``yolor-ray ARGS`` as a driver of the two-node cluster, storage on S3."""
    command = [sys.executable, "-m", "yolor_ray.cli", *map(str, args), "--address", cluster.address,
               "--s3-endpoint", s3_endpoint]
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=cluster.env, text=True, **popen)
    return subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def train_args(data, bucket, name, *extra):
    return ["train", ATSS, "--data", data, "--small", "--image-size", 64, "--storage", f"s3://{bucket}/runs",
            "--name", name, "--samples", 0, *extra]


def read_json(client, bucket, key):
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.ray
@pytest.mark.subprocess
def test_node2_has_its_own_disk(cluster):
    """Where node 2 writes in its temp dir, the head sees nothing; the hidden folder is empty there."""
    (cluster.hidden / "only-on-the-head").write_text("x")
    script = textwrap.dedent(f"""
        import os, ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        ray.init(address={cluster.address!r}, logging_level="ERROR")
        node2 = next(n for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == {NODE2_IP!r})

        @ray.remote(num_cpus=0)
        def write_there():
            with open({str(cluster.root / "node2" / "marker")!r}, "w") as f:
                f.write("node 2")
            return ray.util.get_node_ip_address(), os.listdir({str(cluster.hidden)!r})

        print(ray.get(write_there.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            node2["NodeID"], soft=False)).remote()))
    """)
    done = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"('{NODE2_IP}', [])"
    assert not (cluster.root / "node2" / "marker").exists()
    nodes = cluster.alive_ips()
    assert set(nodes) == {HEAD_IP, NODE2_IP}
    assert nodes[HEAD_IP][WORKER_RESOURCE] == nodes[NODE2_IP][WORKER_RESOURCE] == 1


@pytest.fixture(scope="module")
def two_node_run(cluster, s3_endpoint, s3, tiny_data):
    """One 2-worker run, one worker per node, COCO evaluation every epoch."""
    bucket, client = s3
    proc = on_cluster(cluster, s3_endpoint, *train_args(tiny_data, bucket, "two-nodes", "--epochs", 2,
                                                        "--num-workers", 2, *ONE_PER_NODE, "--verbose"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return proc, read_json(client, bucket, "runs/two-nodes/results.json"), s3_keys(client, bucket)


@pytest.mark.ray
@pytest.mark.subprocess
def test_training_and_evaluation_across_nodes(two_node_run):
    proc, record, keys = two_node_run
    assert record["world_size"] == 2
    assert [r["rank"] for r in record["nodes"]] == [0, 1]
    assert {r["ip"] for r in record["nodes"]} == {HEAD_IP, NODE2_IP}
    assert len({r["node_id"] for r in record["nodes"]}) == 2
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert all("coco/bbox_mAP" in h for h in record["history"])  # evaluated every epoch, across nodes
    assert 0.0 <= record["metrics"]["coco/bbox_mAP"] <= 1.0
    assert "collect results through the process group" in proc.stdout + proc.stderr
    assert "dataset" in proc.stderr and "checked on 2 node(s)" in proc.stderr


@pytest.mark.ray
@pytest.mark.subprocess
def test_rank0_logs_land_in_storage(two_node_run):
    _, _, keys = two_node_run
    logs = [k for k in keys if k.startswith("runs/two-nodes/logs/")]
    assert any(k.endswith(".log") for k in logs), logs
    assert any(k.endswith("vis_data/scalars.json") for k in logs), logs


@pytest.mark.ray
@pytest.mark.subprocess
def test_data_missing_on_node2_fails_up_front(cluster, s3_endpoint, s3, tiny_data):
    bucket, client = s3
    hidden_data = cluster.hidden / "shapes"
    shutil.copytree(tiny_data, hidden_data)  # here, on the head; node 2 sees an empty folder
    start = time.monotonic()
    proc = on_cluster(cluster, s3_endpoint, *train_args(hidden_data, bucket, "no-data", "--epochs", 1,
                                                        "--num-workers", 2, *ONE_PER_NODE), timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("yolor-ray: error: the dataset") and f"node {NODE2_IP}" in message, message
    assert f"{hidden_data}' does not exist" in message and HEAD_IP not in message
    assert "Traceback" not in proc.stderr
    assert not [k for k in s3_keys(client, bucket) if k.startswith("runs/no-data/")]  # nothing written
    print(f"missing data on node 2: refused in {time.monotonic() - start:.1f} s")


FAILING_HOOK = '''
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FailInEpoch2Hook(Hook):
    def before_train_epoch(self, runner):
        if runner.epoch == 1:  # 0-based: the second epoch
            raise RuntimeError("planted failure in epoch 2")
'''


@pytest.mark.ray
@pytest.mark.subprocess
def test_logs_in_storage_after_a_run_fails_in_epoch_2(cluster, s3_endpoint, s3, tiny_data, tmp_path):
    bucket, client = s3
    (cluster.modules / "fail_in_epoch2.py").write_text(FAILING_HOOK)  # a user's module, on every node
    config = config_with_user_hook(tmp_path / "atss_failing.py", ATSS, "fail_in_epoch2", "FailInEpoch2Hook")
    proc = on_cluster(cluster, s3_endpoint, "train", config, *train_args(tiny_data, bucket, "fails")[2:],
                      "--epochs", 3, "--num-workers", 2, "--max-failures", 0, *ONE_PER_NODE)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "planted failure in epoch 2" in proc.stdout + proc.stderr
    keys = [k for k in s3_keys(client, bucket) if k.startswith("runs/fails/logs/")]
    rank0_log = next(k for k in keys if k.endswith("_rank0.log") and "/rank" not in k)
    text = client.get_object(Bucket=bucket, Key=rank0_log)["Body"].read().decode()
    assert "Epoch(val) [1]" in text  # epoch 1's validation, written before the failure
    assert any(k.endswith("vis_data/scalars.json") for k in keys)
    # Rank 1 ran on node 2, whose disk the head never sees: its log and output came through storage.
    rank1 = [k for k in keys if k.startswith("runs/fails/logs/rank1/")]
    rank1_log = next(k for k in rank1 if k.endswith("_rank1.log"))
    assert "Epoch(train) [1]" in client.get_object(Bucket=bucket, Key=rank1_log)["Body"].read().decode()
    rank1_output = next(k for k in rank1 if k.endswith("/output.log"))
    text = client.get_object(Bucket=bucket, Key=rank1_output)["Body"].read().decode()
    assert "RuntimeError: planted failure in epoch 2" in text  # its own traceback


TRAIN_LINE = re.compile(r"Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]")
RESUMED = re.compile(r"resumed epoch: (\d+), iter: (\d+)")


def _newest_registered_epoch(client, bucket) -> int:
    """The epoch of the newest checkpoint in Ray's snapshot of the run (registered, so
    resumable; 0: none yet), from the metrics reported with it."""
    try:
        snapshot = client.get_object(Bucket=bucket, Key="runs/lost-node/checkpoint_manager_snapshot.json")
    except client.exceptions.NoSuchKey:
        return 0
    latest = json.loads(snapshot["Body"].read()).get("latest_checkpoint_result")
    return latest["metrics"]["epoch"] if latest else 0


@pytest.mark.ray
@pytest.mark.subprocess
def test_lost_node_resumes_from_last_checkpoint(cluster, s3_endpoint, s3, tiny_data):
    """Node 2 killed (its raylet and workers, by pid) mid-epoch, then started again."""
    bucket, client = s3
    epochs = 3
    proc = on_cluster(cluster, s3_endpoint, *train_args(tiny_data, bucket, "lost-node", "--epochs", epochs,
                                                        "--num-workers", 2, "--batch-size", 1, "--max-failures", 3,
                                                        *ONE_PER_NODE, "--verbose", "--cfg-options",
                                                        "default_hooks.logger.interval=1"),
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines = []
    try:
        # After the first checkpoint is registered, kill node 2 a few iterations into epoch 2.
        deadline = time.monotonic() + 600
        while True:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines[-80:])
            assert time.monotonic() < deadline, "".join(lines[-80:])
            lines.append(line)
            match = TRAIN_LINE.search(line)
            # Ray registers a checkpoint after the workers move on: wait until its snapshot lists one.
            if match and int(match[1]) >= 2 and int(match[2]) >= 3:
                registered = _newest_registered_epoch(client, bucket)
                if registered:
                    break
        killed = cluster.kill_node2()
        time.sleep(3)
        cluster.start_node2()
        rest, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-6000:]
    record = read_json(client, bucket, "runs/lost-node/results.json")
    assert record["restarts"] == 1 and [h["epoch"] for h in record["history"]] == list(range(1, epochs + 1))
    assert {r["ip"] for r in record["nodes"]} == {HEAD_IP, NODE2_IP}  # the restarted group spans both again

    # Iterations trained twice: the furthest iteration logged before the loss, less where the resume began.
    # The resume starts at the newest checkpoint Ray had registered when the node went (or a later
    # one registered as it went); under load that one can lag the workers by more than an epoch.
    before = output[:output.index("resumed epoch:")]
    reached = max((int(e) - 1) * int(n) + int(i) for e, i, n in TRAIN_LINE.findall(before))
    per_epoch = int(TRAIN_LINE.findall(before)[0][2])
    resumed_iter = int(RESUMED.search(output)[2])
    twice = reached - resumed_iter
    print(f"lost node: killed {len(killed)} processes of node 2; reached iteration {reached}, resumed from "
          f"{resumed_iter}: {twice} iteration(s) trained twice ({per_epoch} per epoch, 1 checkpoint interval; "
          f"epoch {registered}'s checkpoint the newest registered at the kill)")
    assert resumed_iter >= registered * per_epoch and 0 < twice


@pytest.mark.ray
@pytest.mark.subprocess
def test_sweep_trials_train_on_both_nodes(cluster, s3_endpoint, s3, tiny_data):
    bucket, client = s3
    proc = on_cluster(cluster, s3_endpoint, "tune", ATSS, "--data", tiny_data, "--small", "--image-size", 64,
                      "--epochs", 1, "--storage", f"s3://{bucket}/sweeps", "--name", "two-node-sweep",
                      "--search", "grid", "--placements", "fpn", "pred", "--modeling", "vector",
                      "--num-workers", 1, "--samples", 0, "--fixed-cluster", *ONE_PER_NODE)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    board = read_json(client, bucket, "sweeps/two-node-sweep/leaderboard.json")
    assert [t["status"] for t in board["trials"]] == ["completed", "completed"]
    worker_ips = set()
    for trial in board["trials"]:
        record = read_json(client, bucket, f"sweeps/two-node-sweep/runs/{trial['trial']}/results.json")
        worker_ips |= {r["ip"] for r in record["nodes"]}
    assert worker_ips == {HEAD_IP, NODE2_IP}  # one trial's worker on each node
    assert "at most 2 at a time" in proc.stderr


def test_concurrency_is_clamped_where_the_cluster_cannot_grow():
    """Scaled down: 3 CPUs, TorchTrainer trials of 1 (actor) + 1 (worker), two asked for, one fits."""
    from yolor_ray.paired.capacity import concurrency, sweep_concurrency, trial_resources
    from yolor_ray.train.spec import RunSettings, Scaling

    need = trial_resources(RunSettings(scaling=Scaling(num_workers=1)), in_actor=False)
    assert need == {"CPU": 2}
    fits = concurrency({"CPU": 3.0}, need, head_cpus=3.0)
    assert fits == 1
    assert sweep_concurrency(fits, 2, fixed=True) == (1, "--max-concurrent 2: the cluster cannot grow and holds "
                                                          "1 trial(s) at a time; using 1")
    assert sweep_concurrency(fits, 2, fixed=False) == (2, None)  # an autoscaler adds what is missing
    # The example: 8 CPUs, trials of 1 + 7.
    big = trial_resources(RunSettings(scaling=Scaling(num_workers=1, cpus_per_worker=7)), in_actor=False)
    assert sweep_concurrency(concurrency({"CPU": 8.0}, big, head_cpus=8.0), 2, fixed=True)[0] == 1
    # Trial actors stay on the head: its CPUs bound them even where workers fit elsewhere.
    pin = RunSettings(scaling=Scaling(num_workers=1, worker_resources={WORKER_RESOURCE: 1}))
    pinned = trial_resources(pin, in_actor=False)
    assert pinned == {"CPU": 2, WORKER_RESOURCE: 1}
    assert concurrency({"CPU": 16.0, WORKER_RESOURCE: 8.0}, pinned, head_cpus=2.0) == 2
    # A trial that trains in its own actor is its worker: no actor CPU, not bound to the head.
    in_actor = trial_resources(pin, in_actor=True)
    assert in_actor == {"CPU": 1, WORKER_RESOURCE: 1}
    assert concurrency({"CPU": 16.0, WORKER_RESOURCE: 8.0}, in_actor) == 8
