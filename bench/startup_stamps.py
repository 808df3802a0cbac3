"""Where a run's start-up goes: a measured child process run under this wrapper records
when it reaches each phase of the driver (imports, ``prepare_run``, Ray's start, the
trainer), and ``bench.iter_times`` records the worker's (its process start, its imports,
the Runner's build, the first epoch), all on the system-wide monotonic clock.

    python -m bench.startup_stamps MODULE ARGS...   (``$YOLOR_BENCH_STARTUP_STAMPS``: where to write)

It runs ``python -m MODULE ARGS...`` (``yolor_ray.cli`` or ``bench.plain_runner``) with
the driver's functions wrapped, nothing else changed. Bench-only: nothing in yolor_ray
knows about it. :func:`startup_phases` turns both records into seconds per phase, and
:class:`StartupCpu` (in the bench's own process) counts the CPU-seconds every process of
the run spent before its first epoch: the run's processes are those that inherited its
stamps file's path in their environment (Ray's node processes and actors do).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import sys
import threading
import time
from collections import defaultdict

STAMPS_ENV = "YOLOR_BENCH_STARTUP_STAMPS"
_stamps: dict[str, float] = {"interpreter": time.perf_counter()}

# (phase, the stamp it starts at, the stamp it ends at), in order, for a run under Ray and in the plain Runner
RAY_PHASES = (
    ("imports (driver)", "launched", "driver imported"),
    ("prepare_run", "prepare_run start", "prepare_run end"),
    ("Ray's start (ray.init)", "ray.init start", "ray.init end"),
    ("trainer start to the worker's process", "trainer start", "process started"),
    ("the worker's own start and imports", "process started", "hook module imported"),
    ("Runner's build", "hook module imported", "before_train"),
    ("first epoch's start", "before_train", "first epoch"),
)
PLAIN_PHASES = (
    ("imports (driver)", "launched", "driver imported"),
    ("prepare_run", "prepare_run start", "prepare_run end"),
    ("Runner's build", "prepare_run end", "before_train"),
    ("first epoch's start", "before_train", "first epoch"),
)


def startup_phases(launched: float, driver: dict[str, float], worker: dict[str, float], first_epoch: float,
                   plain: bool) -> dict[str, float]:
    """Seconds per phase from launch to the first epoch; ``other``: what lies between them
    (arguments, the run's files, the trainer's set-up on the driver), so they add up."""
    at = {"launched": launched, **driver, **worker, "first epoch": first_epoch}
    phases = {phase: round(at[end] - at[start], 2) for phase, start, end in (PLAIN_PHASES if plain else RAY_PHASES)}
    phases["other"] = round(first_epoch - launched - sum(phases.values()), 2)
    return phases


class StartupCpu:
    """CPU-seconds of the run's processes (``marker`` in their environment), by process, from
    ``with`` to :meth:`until` a moment (the first epoch), read from /proc every quarter second."""

    def __init__(self, marker: str, interval_s: float = 0.25):
        self.marker = marker.encode()
        self.interval_s = interval_s
        self._ours: dict[int, str | None] = {}  # pid -> label, or None: not the run's
        self._readings: list[tuple[float, dict[int, float]]] = []
        self._stop = threading.Event()

    def _label(self, pid: str) -> str | None:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if self.marker not in f.read():
                    return None
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{pid}/stat") as f:
                name = f.read().split("(", 1)[1].rsplit(")", 1)[0]
        except OSError:
            return None
        if "bench.startup_stamps" in argv:
            return "driver"
        script = next((os.path.basename(a) for a in argv[1:3] if a.endswith(".py")), None)
        return f"python {script}" if name == "python" and script else name

    def _read(self) -> dict[int, float]:
        tick = os.sysconf("SC_CLK_TCK")
        found = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid not in self._ours:
                self._ours[pid] = self._label(entry.name)
            if self._ours[pid] is None:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                found[pid] = (int(fields[11]) + int(fields[12])) / tick
                # a Ray worker takes its actor's name once it has one: keep the latest
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
                if comm.startswith("ray::") and comm != "ray::IDLE":
                    self._ours[pid] = comm
            except OSError:
                continue
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._readings.append((time.perf_counter(), self._read()))

    def __enter__(self) -> "StartupCpu":
        self._thread = threading.Thread(target=self._run, name="startup-cpu", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def until(self, moment: float) -> dict[str, float]:
        """CPU-seconds by process label up to ``moment`` (each process's last reading before it)."""
        last: dict[int, float] = {}
        for t, reading in self._readings:
            if t > moment:
                break
            last.update(reading)
        used = defaultdict(float)
        for pid, seconds in last.items():
            used[self._ours[pid]] += seconds
        return {label: round(s, 2) for label, s in sorted(used.items(), key=lambda kv: -kv[1]) if s >= 0.01}


def stamp(name: str) -> None:
    _stamps.setdefault(name, time.perf_counter())  # the first time a phase is reached


def _wrap(module, name: str, label: str) -> None:
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        stamp(f"{label} start")
        try:
            return original(*args, **kwargs)
        finally:
            stamp(f"{label} end")

    setattr(module, name, wrapped)


def _wrap_context(module, name: str, label: str) -> None:
    original = getattr(module, name)

    @contextlib.contextmanager
    def wrapped(*args, **kwargs):
        stamp(f"{label} start")
        with original(*args, **kwargs) as value:
            stamp(f"{label} end")
            yield value

    setattr(module, name, wrapped)


def _write() -> None:
    path = os.environ.get(STAMPS_ENV)
    if path:
        with open(path, "w") as f:
            json.dump(_stamps, f)


def main(argv: list[str]) -> None:
    atexit.register(_write)
    module, args = argv[0], argv[1:]
    import yolor_ray.train.driver as driver  # the driver's imports: torch, mmengine, mmdet, Ray Train
    import yolor_ray.train.prepare as prepare

    stamp("driver imported")
    _wrap(prepare, "prepare_run", "prepare_run")  # as bench.plain_runner imports it
    driver.prepare_run = prepare.prepare_run  # as run_training calls it
    _wrap_context(driver, "ray_session", "ray.init")
    _wrap(driver, "_fit", "trainer")
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
