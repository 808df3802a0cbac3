"""Runs as a user starts them: the ``yolor-ray`` command in a subprocess, a config with a
hook of the user's own module, and what a run leaves in its storage folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from support import tiers
from support.paths import REPO, TESTS

# Epochs of conftest's ``trained_baseline`` (test_honest_ap checks each of them).
HONEST_EPOCHS = 10


def worker_like_cfg(spec, work_dir: Path):
    """A prepared run's config (``train.prepare``, from a TrainSpec) for MMEngine's own Runner
    in this process, as a worker sets it: checkpoints left to the report hook, no trackers."""
    from yolor_ray.train.prepare import prepare_run

    cfg = prepare_run(spec).cfg
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint = None
    cfg.visualizer = dict(type="Visualizer", vis_backends=[])
    return cfg


def yolor_ray(*args, timeout=900, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    """The ``yolor-ray`` command in a subprocess, as a user runs it (a test marked ``subprocess``)."""
    tiers.require(tiers.SUBPROCESS, f"runs `yolor-ray {' '.join(map(str, args[:1]))}` in a subprocess")
    return subprocess.run([sys.executable, "-m", "yolor_ray.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def config_with_user_hook(path: Path, base: Path, module: str, hook: str) -> Path:
    """A config inheriting ``base`` with a hook from a user's own module (``custom_imports``),
    as users bring them; the module must be importable where the config is loaded (a module
    of this package: ``support.NAME`` with :func:`env_with_test_modules`)."""
    path.write_text(f"_base_ = {str(base)!r}\n"
                    f"custom_imports = dict(imports=['yolor_ray.registrations', {module!r}], "
                    "allow_failed_imports=False)\n"
                    f"custom_hooks = [dict(type={hook!r})]\n")
    return path


def env_with_test_modules(**extra: str) -> dict:
    """This environment plus ``extra``, with tests/ on PYTHONPATH: a run's driver and Ray
    workers import ``support.bn_probe_hook`` and the like by name."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, **extra, PYTHONPATH=path)


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


def whole_checkpoints(runs: Path) -> dict[str, int]:
    """Run name -> the furthest epoch of its whole checkpoints under ``runs`` (not one whose
    upload the kill cut short)."""
    furthest = {}
    for state in runs.glob("*/checkpoint_*/run_state.json"):
        weights = state.parent / "checkpoint.pth"
        try:
            record = json.loads(state.read_text())
        except ValueError:  # still being written
            continue
        if weights.is_file() and weights.stat().st_size == record["checkpoint_bytes"]:
            run = state.parent.parent.name
            furthest[run] = max(furthest.get(run, 0), record["history"][-1]["epoch"])
    return furthest


def checkpointed(runs: Path) -> set[str]:
    """The runs under ``runs`` with a whole checkpoint (not one whose upload the kill cut short)."""
    return set(whole_checkpoints(runs))


def tune_trial_statuses(runs: Path) -> dict[str, str]:
    """Each trial's status in Tune's newest experiment snapshot under ``runs`` (what a resumed
    sweep restores: a TERMINATED trial is not trained again), read from Tune's own file."""
    newest = max(runs.glob("experiment_state-*.json"))  # named by the time it was started
    trials = (json.loads(entry[0]) for entry in json.loads(newest.read_text())["trial_data"])
    return {trial["trial_id"]: trial["status"] for trial in trials}


def kill_once_checkpointed(args, runs: Path, grace_s: float = 0, env: dict | None = None,
                           which: Callable[[str], bool] | None = None) -> str:
    """Runs the CLI until a run under ``runs`` (``which``: one whose name it accepts) has a whole
    checkpoint, then kills it (the driver and the local Ray it started) ``grace_s`` later;
    returns what it printed."""
    tiers.require(tiers.SUBPROCESS, f"runs `yolor-ray {args[0]}` in a subprocess")
    proc = subprocess.Popen([sys.executable, "-m", "yolor_ray.cli", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=env)
    try:
        deadline = time.monotonic() + 400
        while not any(which is None or which(run) for run in checkpointed(runs)):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        time.sleep(grace_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.stdout.read()
