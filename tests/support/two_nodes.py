"""A two-node Ray cluster on this machine that looks like two machines.

The head listens on 127.0.0.3; the second node runs at 127.0.0.2 in its own mount
namespace, with a fresh tmpfs on its Ray temp dir, on /dev/shm and on ``hidden``, a
folder the head sees and node 2 sees empty (a dataset copied there is missing on node 2
only). Nothing but the repo and its venv is shared, as on two machines with the same image.

Both nodes have one ``yolor_worker`` resource and runs ask one per worker, so two workers
land one per node and where things run is forced, not left to chance. The head has 3 CPUs
(drivers' trial actors and a worker), node 2 has 1.

Every process is started in its own session and stopped by it; never ``ray stop``.
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

from support import tiers
from support.fake_cluster import RAY
from support.net import free_port

HEAD_IP, NODE2_IP = "127.0.0.3", "127.0.0.2"
WORKER_RESOURCE = "yolor_worker"
HEAD_CPUS, NODE2_CPUS = 3, 1


def session_pids(session: int) -> list[int]:
    """Every process whose session id is ``session``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[3]) == session:  # fields after "(comm)": state ppid pgrp session
            found.append(int(entry.name))
    return found


def stop_session(session: int, grace_s: float = 5.0) -> None:
    """SIGTERM a session's processes, SIGKILL what is left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in session_pids(session):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while session_pids(session) and time.monotonic() < deadline:
            time.sleep(0.3)
        if not session_pids(session):
            return


@dataclass
class TwoNodeCluster:
    address: str  # GCS address for drivers (--address)
    env: dict  # for drivers: token auth, multi-node on, no RAY_ADDRESS
    root: Path  # temp dirs, logs, the hidden folder
    hidden: Path  # visible here, empty on node 2
    modules: Path  # on every Ray process's PYTHONPATH: a user's own modules (custom_imports)
    head: subprocess.Popen
    node2: subprocess.Popen | None = None

    def start_node2(self, timeout_s: float = 120.0) -> None:
        temp = self.root / "node2"
        temp.mkdir(exist_ok=True)
        script = (f"set -e; mount -t tmpfs tmpfs {temp}; mount -t tmpfs tmpfs /dev/shm; "
                  f"mount -t tmpfs tmpfs {self.hidden}; "
                  f"exec {RAY} start --address {self.address} --node-ip-address {NODE2_IP} --num-cpus {NODE2_CPUS} "
                  f"--num-gpus 0 --resources '{json.dumps({WORKER_RESOURCE: 1})}' --temp-dir {temp} "
                  f"--dashboard-agent-listen-port {free_port()} --metrics-export-port {free_port()} "
                  f"--runtime-env-agent-port {free_port()} --disable-usage-stats --block")
        with open(self.root / "node2.out", "ab") as out:
            self.node2 = subprocess.Popen(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                                          env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_for(lambda nodes: NODE2_IP in nodes, timeout_s, "node 2 did not join")

    def kill_node2(self) -> list[int]:
        """SIGKILL node 2's raylet, workers and everything else it started; returns the pids."""
        pids = session_pids(self.node2.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.node2.wait(timeout=30)
        return pids

    def alive_ips(self) -> dict[str, dict]:
        """Alive nodes by IP, with their total resources, asked from the GCS in a fresh process."""
        script = ("import json, sys\nfrom ray._raylet import GcsClient\n"
                  "infos = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)\n"
                  "print(json.dumps({n.node_manager_address: dict(n.resources_total) for n in infos.values() "
                  "if n.state == 0}))")
        done = subprocess.run([sys.executable, "-c", script, self.address], env=self.env, capture_output=True,
                              text=True, timeout=60)
        return json.loads(done.stdout) if done.returncode == 0 else {}

    def _wait_for(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready(self.alive_ips()):
            if time.monotonic() > deadline:
                logs = "".join((self.root / f).read_text()[-2000:] for f in ("head.out", "node2.out")
                               if (self.root / f).exists())
                raise RuntimeError(f"{what} within {timeout_s:.0f} s:\n{logs}")
            time.sleep(1)

    def stop(self) -> None:
        for proc in (self.node2, self.head):
            if proc is not None:
                stop_session(proc.pid)


@contextmanager
def two_node_cluster(extra_env: dict | None = None, timeout_s: float = 180.0):
    """Yields a :class:`TwoNodeCluster` with both nodes alive; on exit exactly its processes
    are stopped and its folders removed. ``extra_env``: for every Ray process and driver
    (e.g. AWS credentials, as an instance profile would give every node)."""
    tiers.require(tiers.RAY, "starts a two-node Ray cluster")
    root = Path(tempfile.mkdtemp(prefix="yr2n-", dir="/tmp"))  # short: Ray's socket paths live under it
    hidden, modules = root / "hidden", root / "modules"
    hidden.mkdir()
    modules.mkdir()
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1", OMP_NUM_THREADS="1", **(extra_env or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(modules), env.get("PYTHONPATH")]))
    env.pop("RAY_ADDRESS", None)
    (root / "head").mkdir()
    command = [RAY, "start", "--head", "--block", f"--node-ip-address={HEAD_IP}", f"--port={port}",
               f"--num-cpus={HEAD_CPUS}", "--num-gpus=0", f"--resources={json.dumps({WORKER_RESOURCE: 1})}",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
               f"--runtime-env-agent-port={free_port()}", f"--ray-client-server-port={free_port()}",
               f"--temp-dir={root / 'head'}", "--disable-usage-stats"]
    with open(root / "head.out", "wb") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    cluster = TwoNodeCluster(f"{HEAD_IP}:{port}", env, root, hidden, modules, head)
    try:
        cluster._wait_for(lambda nodes: HEAD_IP in nodes, timeout_s, "the head did not start")
        cluster.start_node2(timeout_s)
        yield cluster
    finally:
        cluster.stop()
        subprocess.run(["umount", "-l", str(root / "node2")], capture_output=True)  # only if it leaked here
        shutil.rmtree(root, ignore_errors=True)
