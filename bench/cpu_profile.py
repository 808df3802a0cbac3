"""Where the machine's CPU time goes: user + system seconds of every process, read
from /proc, grouped by process name.

``cpu_seconds`` is one reading (the iteration-time hook takes two around training);
``CpuSampler`` reads every quarter second in a thread, so processes that start and exit
in between (Ray Train's per-run actors) are counted too, up to their last reading.
"""
from __future__ import annotations

import os
import threading
import time
from collections import defaultdict


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """User + system CPU seconds of every process on the machine: {pid: (name, seconds)}."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ... utime (11) stime (12)
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def by_name(start: dict[int, tuple[str, float]], end: dict[int, tuple[str, float]],
            own_label: str = "this process") -> dict[str, float]:
    """CPU seconds used between two readings, summed per process name, largest first."""
    used = defaultdict(float)
    for pid, (name, seconds) in end.items():
        spent = seconds - start.get(pid, (name, 0.0))[1]
        if spent > 0:
            used[own_label if pid == os.getpid() else name] += spent
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class CpuSampler:
    """CPU seconds per process name while a ``with`` block runs (``.result`` after it).
    ``own_tree``: only this process and those it started (and they started, ...), not what
    else runs on a shared machine; a process's parent is read when it is first seen."""

    def __init__(self, interval_s: float = 0.25, own_label: str = "this process", own_tree: bool = False):
        self.interval_s = interval_s
        self.own_label = own_label
        self.own_tree = own_tree
        self.result: dict | None = None
        self._stop = threading.Event()
        self._last: dict[int, tuple[str, float]] = {}
        self._parents: dict[int, int | None] = {}

    def _read(self) -> None:
        reading = cpu_seconds()
        self._last.update(reading)
        if self.own_tree:
            for pid in reading.keys() - self._parents.keys():
                self._parents[pid] = _parent(pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def _in_own_tree(self, pid: int) -> bool:
        seen = set()
        while pid is not None and pid not in seen:
            if pid == os.getpid():
                return True
            seen.add(pid)
            pid = self._parents.get(pid)
        return False

    def __enter__(self) -> "CpuSampler":
        self._start, self._start_t = cpu_seconds(), time.perf_counter()
        self._last = dict(self._start)
        if self.own_tree:
            self._parents = {pid: _parent(pid) for pid in self._start}
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        last = {pid: v for pid, v in self._last.items() if not self.own_tree or self._in_own_tree(pid)}
        used = by_name(self._start, last, self.own_label)
        self.result = dict(wall_s=time.perf_counter() - self._start_t, total_cpu_s=sum(used.values()),
                           cpu_s={name: round(s, 2) for name, s in used.items()})
