"""cluster.yaml: Ray's schema and our rules offline; autoscaling with fake nodes on this machine."""
import json
import re
import subprocess
import sys
import time

import pytest
import yaml

from yolor_ray.cli import main as cli_main

from support.fake_cluster import alive_nodes, fake_autoscaling_cluster
from support.paths import ATSS, REPO, TESTS

CLUSTER_YAML = REPO / "cluster.yaml"

# Runs the real CLI with every network call refused: checking must never reach AWS.
NO_NETWORK = """
import runpy, socket, sys
def refuse(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.sendmsg") or (
            event == "socket.connect" and args[0].family != socket.AF_UNIX):
        raise RuntimeError(f"network call during cluster check: {event} {args[1:]}")
sys.addaudithook(refuse)
sys.argv = ["yolor-ray", *sys.argv[1:]]
runpy.run_module("yolor_ray.cli", run_name="__main__")
"""


@pytest.mark.subprocess
def test_shipped_cluster_yaml_passes_offline():
    proc = subprocess.run([sys.executable, "-c", NO_NETWORK, "cluster", "check", str(CLUSTER_YAML)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "valid (Ray's autoscaler schema and yolor-ray's rules)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:] if line.split()[:1] and
            line.split()[0] in ("head", "gpu1-spot", "gpu1-ondemand", "gpu8-spot", "gpu8-ondemand")}
    assert rows["head"][1:5] == ["m5.2xlarge", "on-demand", "8", "0"]
    assert rows["gpu1-spot"][1:5] == ["g5.xlarge", "spot", "4", "1"]
    assert rows["gpu1-ondemand"][1:5] == ["g5.xlarge", "on-demand", "4", "1"]
    assert rows["gpu8-spot"][1:5] == ["g5.48xlarge", "spot", "192", "8"]
    assert rows["gpu8-ondemand"][1:5] == ["g5.48xlarge", "on-demand", "192", "8"]
    assert "spot falls back to: gpu1-spot -> gpu1-ondemand, gpu8-spot -> gpu8-ondemand" in out
    assert "storage: s3://my-bucket/yolor-ray" in out
    assert "network call" not in proc.stderr


def _edited(tmp_path, edit) -> str:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _check(path, capsys) -> tuple[int, str]:
    """The real CLI, in this process (argparse, the check, run_guarded's exit status)."""
    rc = cli_main(["cluster", "check", path])
    captured = capsys.readouterr()
    return rc, captured.err


def _replace(key, index, old, new):
    def edit(config):
        assert old in config[key][index]
        config[key][index] = config[key][index].replace(old, new)
    return edit


def _set(path, value):
    def edit(config):
        *parents, last = path
        node = config
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return edit


STORAGE_LINE = "'export YOLOR_RAY_STORAGE=s3://my-bucket/yolor-ray'"
WORKER_START = "RAY_AUTH_MODE=token ray start --address"

BAD_COPIES = {
    "gpu type without resources": (
        _set(["available_node_types", "gpu8-spot", "resources"], None),
        [r"available_node_types\.gpu8-spot: 'resources' is a required property \(Ray's autoscaler schema\)",
         r"available_node_types\.gpu8-spot\.resources\.GPU: not declared for GPU instance type g5\.48xlarge; "
         r"declare it, e.g. `resources: \{GPU: 8, CPU: 192\}`",
         r"available_node_types\.gpu8-spot\.resources\.CPU: not declared"]),
    "gpu type declaring only CPUs": (
        _set(["available_node_types", "gpu1-spot", "resources"], {"CPU": 4}),
        [r"available_node_types\.gpu1-spot\.resources\.GPU: not declared for GPU instance type g5\.xlarge"]),
    "gpu count that the instance does not have": (
        _set(["available_node_types", "gpu8-ondemand", "resources"], {"CPU": 192, "GPU": 4}),
        [r"available_node_types\.gpu8-ondemand\.resources\.GPU: 4 declared, but g5\.48xlarge has 8 GPU\(s\)"]),
    "planted AWS access key": (
        lambda c: c["setup_commands"].append("export AWS_ACCESS_KEY_ID=AKIAYOLORRAYPLANTED1"),
        [r"setup_commands\[6\]: holds an AWS access key id; give nodes an IAM instance profile"]),
    "planted secret key in a mapping": (
        _set(["provider", "aws_secret_access_key"], "wJalrXUtnFEMIplantedSECRET"),
        [r"provider\.aws_secret_access_key: aws_secret_access_key is given a literal value that looks like a "
         r"secret"]),
    "literal RAY_AUTH_TOKEN": (
        _replace("worker_start_ray_commands", 1, WORKER_START, "RAY_AUTH_TOKEN=5f1e0c9a7d RAY_AUTH_MODE=token "
                 "ray start --address"),
        [r"worker_start_ray_commands\[1\]: RAY_AUTH_TOKEN is given a literal value; the token must come from a "
         r"secret store"]),
    "no storage location": (
        _replace("setup_commands", 0, STORAGE_LINE, ""),
        [r"YOLOR_RAY_STORAGE: not set in any setup or start command; add `export YOLOR_RAY_STORAGE="
         r"s3://bucket/prefix`"]),
    "relative storage path": (
        _replace("setup_commands", 0, STORAGE_LINE, "'export YOLOR_RAY_STORAGE=./results'"),
        [r"setup_commands\[0\]: YOLOR_RAY_STORAGE='\./results' is not shared by the nodes; valid are "
         r"s3://bucket/prefix or an absolute path"]),
    "unknown top-level key and a wrong type": (
        lambda c: c.update(max_nodes=4, idle_timeout_minutes="ten"),
        [r"\(top level\): Additional properties are not allowed \('max_nodes' was unexpected\) "
         r"\(Ray's autoscaler schema\)",
         r"idle_timeout_minutes: 'ten' is not of type 'number' \(Ray's autoscaler schema\)"]),
    "worker started without token auth": (
        _replace("worker_start_ray_commands", 1, WORKER_START, "ray start --address"),
        [r"worker_start_ray_commands\[1\]: `ray start` runs without token auth; put RAY_AUTH_MODE=token before it"]),
    "token auth disabled": (
        _replace("setup_commands", 0, "'export RAY_AUTH_MODE=token'", "'export RAY_AUTH_MODE=disabled'"),
        [r"setup_commands\[0\]: RAY_AUTH_MODE=disabled turns token auth off"]),
    "public dashboard": (
        _replace("head_start_ray_commands", 1, "--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0"),
        [r"head_start_ray_commands\[1\]: --dashboard-host=0\.0\.0\.0 serves the dashboard and job server beyond "
         r"the head; use --dashboard-host=127\.0\.0\.1"]),
    "dashboard port opened to the world": (
        _set(["provider", "security_group"], {"GroupName": "yolor", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 8265, "ToPort": 8265, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
        [r"provider\.security_group\.IpPermissions\[0\]: opens ports 8265-8265 to the whole internet"]),
}


@pytest.mark.parametrize("case", list(BAD_COPIES))
def test_edited_copy_fails_with_a_clear_message(case, tmp_path, capsys):
    edit, expected = BAD_COPIES[case]
    rc, err = _check(_edited(tmp_path, edit), capsys)
    assert rc == 2, err
    assert err.startswith("yolor-ray: error: ") and "Traceback" not in err
    problems = [line[4:] for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(expected), err
    for pattern in expected:
        assert any(re.match(pattern, problem) for problem in problems), f"{pattern!r} not in:\n{err}"
    for secret in ("AKIAYOLORRAYPLANTED1", "wJalrXUtnFEMIplantedSECRET", "5f1e0c9a7d"):
        assert secret not in err  # the error names the place, never repeats the secret


def test_every_problem_is_listed_at_once(tmp_path, capsys):
    edits = [BAD_COPIES[case][0] for case in ("gpu type declaring only CPUs", "planted AWS access key",
                                              "literal RAY_AUTH_TOKEN", "no storage location",
                                              "unknown top-level key and a wrong type")]
    rc, err = _check(_edited(tmp_path, lambda c: [edit(c) for edit in edits]), capsys)
    assert rc == 2
    assert "6 problem(s)" in err and len([line for line in err.splitlines() if line.startswith("  - ")]) == 6


def test_secret_references_are_not_secrets(tmp_path, capsys):
    """A token read at boot or taken from the environment, a parameter name: all fine."""
    def edit(config):
        config["setup_commands"].append('export RAY_AUTH_TOKEN="$(aws ssm get-parameter --with-decryption --name '
                                        '"$YOLOR_RAY_TOKEN_PARAMETER" --query Parameter.Value --output text)"')
        config["worker_start_ray_commands"][1] = config["worker_start_ray_commands"][1].replace(
            WORKER_START, "RAY_AUTH_TOKEN=$RAY_AUTH_TOKEN " + WORKER_START)
    rc, err = _check(_edited(tmp_path, edit), capsys)
    assert rc == 0, err


def test_unreadable_file_is_a_one_line_error(tmp_path, capsys):
    rc, err = _check(str(tmp_path / "nope.yaml"), capsys)
    assert rc == 2 and f"cluster file '{tmp_path / 'nope.yaml'}' not found" in err
    (tmp_path / "list.yaml").write_text("- just\n- a list\n")
    rc, err = _check(str(tmp_path / "list.yaml"), capsys)
    assert rc == 2 and "the top level must be a mapping of Ray cluster keys, got list" in err


@pytest.mark.subprocess
def test_nodes_install_the_wheel_that_publish_uploads():
    """cluster.yaml fetches the wheel under the cache key setup.sh and the publish script use."""
    setup = (REPO / "scripts" / "setup.sh").read_text()
    versions = dict(re.findall(r"^(TORCH_VERSION|MMCV_VERSION)=(\S+)$", setup, re.MULTILINE))
    key = f"mmcv-{versions['MMCV_VERSION']}-torch{versions['TORCH_VERSION']}-py311-cuda"
    commands = yaml.safe_load(CLUSTER_YAML.read_text())["setup_commands"]
    fetch = next(c for c in commands if "YOLOR_RAY_WHEELS" in c and "aws s3 cp" in c)
    assert f"~/.cache/yolor-ray/wheels/{key}" in fetch and f"$YOLOR_RAY_WHEELS/{key}/" in fetch
    install = next(c for c in commands if "scripts/setup.sh" in c)
    assert "FORCE_CUDA=1" in install  # setup.sh picks the cuda cache key, so it installs the fetched wheel
    assert commands.index(fetch) < commands.index(install)

    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO)}  # no YOLOR_RAY_WHEELS: refused before anything runs
    proc = subprocess.run(["bash", "scripts/publish_mmcv_wheel.sh"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=60)
    assert proc.returncode == 1
    assert "give the wheels location as s3://bucket/prefix (argument or YOLOR_RAY_WHEELS)" in proc.stderr


# --- spot fallback ------------------------------------------------------------------------

def _plan(scorer, demands, failed=()):
    """The node types Ray's (v1) autoscaler would launch for ``demands`` on cluster.yaml's
    types, with ``failed`` types' last launch failed (as AWS reports no spot capacity)."""
    from functools import partial

    from ray.autoscaler._private.node_provider_availability_tracker import (
        NodeAvailabilityRecord,
        NodeAvailabilitySummary,
        UnavailableNodeInformation,
    )
    from ray.autoscaler._private.resource_demand_scheduler import get_nodes_for
    from ray.autoscaler._private.util import fill_node_type_min_max_workers

    config = yaml.safe_load(CLUSTER_YAML.read_text())
    fill_node_type_min_max_workers(config)
    no_capacity = UnavailableNodeInformation("InsufficientInstanceCapacity", "no spot capacity")
    summary = NodeAvailabilitySummary({name: NodeAvailabilityRecord(name, False, time.time(), no_capacity)
                                       for name in failed})
    nodes, unmet = get_nodes_for(config["available_node_types"], {}, config["head_node_type"], 10, demands,
                                 partial(scorer, node_availability_summary=summary))
    assert not unmet
    return dict(nodes)


def test_spot_is_launched_first_and_its_on_demand_twin_after_a_failed_spot_launch():
    from ray.autoscaler._private.loader import load_function_or_class
    from ray.autoscaler._private.resource_demand_scheduler import _default_utilization_scorer

    head_start = yaml.safe_load(CLUSTER_YAML.read_text())["head_start_ray_commands"][1]
    name = re.search(r"RAY_AUTOSCALER_UTILIZATION_SCORER=(\S+)", head_start).group(1)
    scorer = load_function_or_class(name)  # as the head's autoscaler loads it

    trial = [{"GPU": 1, "CPU": 1}]
    assert _plan(scorer, trial) == {"gpu1-spot": 1}
    assert _plan(scorer, trial, failed=["gpu1-spot"]) == {"gpu1-ondemand": 1}
    assert _plan(scorer, trial, failed=["gpu1-spot", "gpu1-ondemand"]) == {"gpu1-spot": 1}  # fit first, never gpu8
    assert _plan(scorer, trial * 8) == {"gpu1-spot": 8}  # a sweep of 8 concurrent trials
    assert _plan(scorer, trial * 8, failed=["gpu1-spot"]) == {"gpu1-ondemand": 4, "gpu1-spot": 4}  # capped twin
    # A full run (docs/cluster.md): 8 workers x (1 GPU, 8 CPUs) fit only the 8-GPU types, on one node.
    full_run = [{"GPU": 1, "CPU": 8}] * 8
    assert _plan(scorer, full_run) == {"gpu8-spot": 1}
    assert _plan(scorer, full_run, failed=["gpu8-spot"]) == {"gpu8-ondemand": 1}
    # Ray's own scorer keeps launching the spot type that just failed: why the head uses ours.
    assert _plan(_default_utilization_scorer, trial, failed=["gpu1-spot"]) == {"gpu1-spot": 1}


def test_spot_fallback_needs_the_scorer_on_the_head(tmp_path, capsys):
    edit = _replace("head_start_ray_commands", 1,
                    "RAY_AUTOSCALER_UTILIZATION_SCORER=yolor_ray.cluster.scorer.spot_fallback_scorer", "")
    rc, err = _check(_edited(tmp_path, edit), capsys)
    assert rc == 2
    assert ("head_start_ray_commands: gpu1-spot, gpu8-spot fall(s) back to on-demand only if the head's `ray start` "
            "has RAY_enable_autoscaler_v2=0 "
            "RAY_AUTOSCALER_UTILIZATION_SCORER=yolor_ray.cluster.scorer.spot_fallback_scorer" in err)
    rc, err = _check(_edited(tmp_path, _set(["available_node_types", "gpu1-ondemand", "node_config",
                                             "InstanceMarketOptions"], {"MarketType": "spot"})), capsys)
    assert rc == 2 and "available_node_types.gpu1-ondemand: a spot type must be named NAME-spot" in err


# --- autoscaling with fake nodes ------------------------------------------------------------

@pytest.mark.ray
@pytest.mark.subprocess
def test_autoscaler_adds_nodes_for_a_run_and_removes_them_when_idle(shapes_dir, tmp_path):
    """Head with 0 CPUs; a 2-worker run makes the autoscaler (with our scorer, as cluster.yaml's
    head runs it) add two 1-CPU spot-named nodes; when the run is done they idle past the
    timeout (6 s) and are removed."""
    # Equal types: Ray's default scorer breaks the tie by the larger name (cpu-standard); only
    # our scorer, loaded by the head's autoscaler from RAY_AUTOSCALER_UTILIZATION_SCORER, picks spot.
    workers = {name: dict(resources={"CPU": 1}, node_config={}, min_workers=0, max_workers=2)
               for name in ("cpu-spot", "cpu-standard")}
    storage = tmp_path / "results"
    scorer = dict(RAY_AUTOSCALER_UTILIZATION_SCORER="yolor_ray.cluster.scorer.spot_fallback_scorer")
    with fake_autoscaling_cluster(workers, head_cpus=0, max_workers=2, idle_timeout_minutes=0.1,
                                  head_env=scorer) as cluster:
        nodes = alive_nodes(cluster)
        assert len(nodes) == 1 and nodes[0]["resources"].get("CPU", 0) == 0  # the head alone, no CPU for workers
        watch_log = tmp_path / "nodes.jsonl"
        watcher = subprocess.Popen([sys.executable, "-m", "support.fake_cluster", "watch", cluster.gcs_address,
                                    str(watch_log)], env=cluster.env, cwd=TESTS)
        try:
            run = subprocess.run(
                [sys.executable, "-m", "yolor_ray.cli", "train", str(ATSS), "--data", str(shapes_dir), "--small",
                 "--image-size", "64", "--epochs", "1", "--num-workers", "2", "--address", cluster.gcs_address,
                 "--storage", str(storage), "--name", "autoscaled", "--samples", "0"],
                env=cluster.env, capture_output=True, text=True, timeout=600, cwd=REPO)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            assert "waiting for the autoscaler to add nodes" in run.stderr  # the driver saw a too-small cluster

            deadline = time.monotonic() + 180
            while len(alive_nodes(cluster)) > 1:
                assert time.monotonic() < deadline, "fake worker nodes still alive 180 s after the run"
                time.sleep(2)
        finally:
            watcher.kill()
            watcher.wait(timeout=30)
        monitor_log = cluster.monitor_log.read_text()

    record = json.loads((storage / "autoscaled" / "results.json").read_text())
    assert record["world_size"] == 2 and record["epochs"] == 1

    samples = [json.loads(line) for line in watch_log.read_text().splitlines()]
    seen = [s["nodes"] for s in samples if "nodes" in s]
    workers = {n["id"]: n for nodes in seen for n in nodes if n["resources"].get("CPU", 0) > 0}
    assert len(workers) == 2 and all(n["resources"]["CPU"] == 1 for n in workers.values())
    assert max(len(nodes) for nodes in seen) == 3  # head + 2 workers at the peak
    assert {n["ip"] for nodes in seen for n in nodes} == {"127.0.0.1"}  # loopback only
    assert re.search(r"Adding \d node\(s\) of type cpu-spot", monitor_log)
    assert "cpu-standard" not in re.sub(r"StandardAutoscaler: \{.*", "", monitor_log)  # only in the config dump
    assert "Removing 2 nodes of type cpu-spot (idle)" in monitor_log
