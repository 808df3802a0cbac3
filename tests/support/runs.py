"""Runs as a user starts them: the ``yolor-ray`` command in a subprocess, a config with a
hook of the user's own module, and what a run leaves in its storage folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import tiers
from support.paths import REPO, TESTS

# Epochs of conftest's ``trained_baseline`` (test_honest_ap checks each of them).
HONEST_EPOCHS = 10


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
