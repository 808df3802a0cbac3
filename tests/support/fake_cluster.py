"""Ray heads for tests that touch no other Ray: a plain head (``local_ray_head``) and an
autoscaling cluster of fake nodes on this machine (``fake_autoscaling_cluster``).

Ray's own ``AutoscalingCluster`` runs ``ray stop --force`` on start and shutdown, which
kills every Ray on the machine (another test's head included), and its default config
file is not shipped in the Ray wheel. So the head is started here the way it does it
internally (``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...``), with our
own free ports, our own temp dir and ``start_new_session=True``; the autoscaler's fake
worker nodes are processes the head's monitor spawns, so every process of this cluster
is in the head's session, and teardown signals exactly that session.

Loopback only: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray resolve its own node
address to 127.0.0.1 (the fake nodes and drivers otherwise pick the machine's address).

``python -m support.fake_cluster watch GCS_ADDRESS OUT`` (tests/ on the path) is the node
watcher the test runs beside a job: one JSON line per second with the alive nodes and their
resources.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from support import tiers
from support.net import free_port

RAY = str(Path(sys.executable).parent / "ray")
HEAD_TYPE = "ray.head.default"  # the fake provider tags its head with this type name


def fake_config(gcs_address: str, worker_types: dict, head_cpus: int, max_workers: int,
                idle_timeout_minutes: float) -> dict:
    """A complete autoscaler config for the fake provider. The v1 autoscaler reads the file
    as it is (no defaults merged), so every key it looks up is written out."""
    node_types = {HEAD_TYPE: dict(resources={"CPU": head_cpus}, node_config={}, max_workers=0)}
    node_types.update(worker_types)
    return dict(
        cluster_name="yolor-ray-fake", max_workers=max_workers, upscaling_speed=1.0,
        idle_timeout_minutes=idle_timeout_minutes,
        provider=dict(type="fake_multinode", gcs_address=gcs_address,
                      use_node_id_as_ip=True,  # all fake nodes share 127.0.0.1: tell them apart by id
                      disable_node_updaters=True, disable_launch_config_check=True),  # no SSH, no setup
        auth=dict(ssh_user="ray"), available_node_types=node_types, head_node_type=HEAD_TYPE, docker={},
        file_mounts={}, cluster_synced_files=[], file_mounts_sync_continuously=False, rsync_exclude=[],
        rsync_filter=[], initialization_commands=[], setup_commands=[], head_setup_commands=[],
        worker_setup_commands=[], head_start_ray_commands=[], worker_start_ray_commands=[])


@dataclass
class FakeCluster:
    gcs_address: str
    dashboard: str
    temp_dir: Path
    env: dict  # for clients: token auth, loopback, no RAY_ADDRESS
    head: subprocess.Popen

    @property
    def monitor_log(self) -> Path:
        return self.temp_dir / "session_latest" / "logs" / "monitor.log"

    def processes(self) -> list[int]:
        """Pids of this cluster: the head's session, or anything naming our temp dir."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # exited meanwhile
                continue
            session = int(stat.rsplit(")", 1)[1].split()[3])  # fields after "(comm)": state ppid pgrp session
            if session == self.head.pid or str(self.temp_dir) in cmdline:
                found.append(int(entry.name))
        return found

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM this cluster's processes, SIGKILL what is left after ``grace_s``."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.5)
            if self.head.poll() is None and sig == signal.SIGKILL:
                self.head.wait(timeout=5)
            if not self.processes():
                break


def _client_env(token: str) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               OMP_NUM_THREADS="1")
    env.pop("RAY_ADDRESS", None)
    return env


@contextmanager
def local_ray_head(num_cpus: int = 2, head_env: dict | None = None, autoscaling_config=None,
                   start_timeout_s: float = 120.0):
    """Yields a running head on loopback with token auth, its own ports, temp dir and session;
    on exit, exactly its processes are stopped and its temp dir is gone (other Rays on the
    machine are left alone, unlike ``ray stop``). ``autoscaling_config(gcs_address)``: the
    autoscaler config its monitor runs; ``head_env``: extra environment of the head's processes."""
    tiers.require(tiers.RAY, "starts a Ray head")
    # Short: Ray's unix socket paths live under it (108 bytes at most).
    temp_dir = Path(tempfile.mkdtemp(prefix="yrhead-", dir="/tmp"))
    gcs_address = f"127.0.0.1:{free_port()}"
    autoscaling = []
    if autoscaling_config is not None:
        config = temp_dir / "autoscaling.yaml"
        config.write_text(yaml.safe_dump(autoscaling_config(gcs_address)))
        autoscaling = [f"--autoscaling-config={config}"]
    env = _client_env(secrets.token_hex(32))
    dashboard_port = free_port()
    command = [RAY, "start", "--head", "--block", *autoscaling, "--node-ip-address=127.0.0.1",
               f"--port={gcs_address.rsplit(':', 1)[1]}", f"--num-cpus={num_cpus}", "--num-gpus=0",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
               f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
               f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    with open(temp_dir / "head.out", "wb") as out:
        head = subprocess.Popen(command, env=dict(env, **(head_env or {})), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    cluster = FakeCluster(gcs_address, f"http://127.0.0.1:{dashboard_port}", temp_dir, env, head)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ((not autoscaling or cluster.monitor_log.is_file()) and alive_nodes(cluster)):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Ray head did not start (exit {head.poll()}):\n"
                                   + (temp_dir / "head.out").read_text()[-3000:])
            time.sleep(1)
        yield cluster
    finally:
        cluster.stop()
        left = cluster.processes()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray head processes still alive after teardown: {left}")


@contextmanager
def fake_autoscaling_cluster(worker_types: dict, head_cpus: int = 0, max_workers: int = 2,
                             idle_timeout_minutes: float = 0.1, head_env: dict | None = None,
                             start_timeout_s: float = 120.0):
    """Yields a running ``FakeCluster`` whose autoscaler adds fake nodes of ``worker_types``;
    on exit, its processes and temp dir are gone. ``head_env``: extra environment of the
    head's processes (its autoscaler included)."""
    head_env = dict(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1", **(head_env or {}))
    with local_ray_head(head_cpus, head_env, start_timeout_s=start_timeout_s,
                        autoscaling_config=lambda gcs_address: fake_config(
                            gcs_address, worker_types, head_cpus, max_workers, idle_timeout_minutes)) as cluster:
        yield cluster


_NODES_SCRIPT = """
import json, sys
from ray._raylet import GcsClient
infos = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)
print(json.dumps([dict(id=i.hex(), ip=n.node_manager_address, resources=dict(n.resources_total))
                  for i, n in infos.items() if n.state == 0]))  # 0: ALIVE
"""


def alive_nodes(cluster: FakeCluster) -> list[dict]:
    """The cluster's alive nodes, asked from the GCS in a fresh process (its token, not ours)."""
    done = subprocess.run([sys.executable, "-c", _NODES_SCRIPT, cluster.gcs_address], env=cluster.env,
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout) if done.returncode == 0 else []


def watch(gcs_address: str, out: str) -> None:
    """Append one JSON line a second: time and alive nodes; runs until killed."""
    from ray._raylet import GcsClient

    client = GcsClient(address=gcs_address)
    with open(out, "a") as f:
        while True:
            try:
                infos = client.get_all_node_info(timeout=10)
                nodes = [dict(id=i.hex(), ip=n.node_manager_address, resources=dict(n.resources_total))
                         for i, n in infos.items() if n.state == 0]
                f.write(json.dumps(dict(t=time.time(), nodes=nodes)) + "\n")
                f.flush()
            except Exception as err:  # the GCS restarting or going away at teardown
                f.write(json.dumps(dict(t=time.time(), error=str(err))) + "\n")
            time.sleep(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["watch"] and len(sys.argv) == 4:
        watch(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m support.fake_cluster watch GCS_ADDRESS OUT")
