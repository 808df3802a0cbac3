"""One line per epoch on the driver: epoch/epochs, loss, the main AP, elapsed, ETA, restarts.

Ray Train calls its callbacks in its controller actor, not in the driver, and the driver
does not stream actors' output (``--verbose`` does): the callback puts each epoch's
metrics on a Ray queue, and a thread of the driver prints them as they come. On a private
local Ray the controller runs on this machine, and the records go through a file instead:
no queue actor (a process of its own, a CPU-second of every run's start-up).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import ray
from ray.train import UserCallback
from ray.util.queue import Empty, Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from yolor_ray.train.lines import epoch_line


class LinesFile:
    """A queue between processes of one machine: a record a JSON line appended to ``path``;
    ``get`` (one reader) returns them in order, ``Empty`` when none came within ``timeout``."""

    def __init__(self, path: str):
        self.path = path
        self._read = 0  # bytes consumed (the reader's)
        self._pending: list[dict] = []

    def __getstate__(self) -> dict:
        return dict(path=self.path)  # what the writer needs

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def put(self, record: dict) -> None:
        with open(self.path, "a") as f:  # one write of one whole line
            f.write(json.dumps(record, default=str) + "\n")

    def get(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while not self._pending:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._read)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            whole = data[:data.rfind(b"\n") + 1]  # a line being written waits for its end
            self._read += len(whole)
            self._pending = [json.loads(line) for line in whole.decode().splitlines() if line]
            if not self._pending:
                if time.monotonic() >= deadline:
                    raise Empty
                time.sleep(min(0.1, timeout))
        return self._pending.pop(0)

    def shutdown(self) -> None:
        Path(self.path).unlink(missing_ok=True)


class EpochProgressCallback(UserCallback):
    """Puts rank 0's metrics of each report on ``queue`` (runs in Ray Train's controller):
    a Ray ``Queue``, or a :class:`LinesFile` on a private local Ray."""

    def __init__(self, queue: Queue | LinesFile):
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint):
        if not metrics:
            return
        try:
            self.queue.put(dict(metrics[0]))
        except Exception as err:  # noqa: BLE001 - a progress line must never fail the training
            logging.getLogger("yolor_ray").warning("epoch progress line lost: %s", err)


def _lines_file() -> LinesFile:
    handle, path = tempfile.mkstemp(prefix="yolor-ray-progress-", suffix=".jsonl")
    os.close(handle)
    return LinesFile(path)


@contextlib.contextmanager
def epoch_progress(epochs: int, enabled: bool = True, same_machine: bool = False) -> Iterator[tuple]:
    """Ray Train callbacks to pass to the trainer (none when disabled); while inside, each
    epoch's line is printed on this driver's stdout. ``same_machine``: the trainer's
    controller runs on this machine (a private local Ray): the records come through a file."""
    if not enabled:
        yield ()
        return
    # No CPU from the workers, and on the driver's node: on a worker node it would die with
    # that node (failing the controller's callback) and keep the node from idling down.
    queue = _lines_file() if same_machine else Queue(actor_options=dict(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                       soft=False)))
    done = threading.Event()
    start = time.monotonic()

    def print_lines():
        first_epoch = None
        while True:
            try:
                record = queue.get(timeout=0.5)
            except Empty:
                if done.is_set():
                    return
                continue
            except Exception:  # the queue's actor is gone (Ray shut down): nothing more will come
                return
            epoch = int(record.get("epoch", 0))
            first_epoch = epoch if first_epoch is None else first_epoch
            print(epoch_line(record, epochs, time.monotonic() - start, first_epoch), flush=True)

    printer = threading.Thread(target=print_lines, name="yolor-ray-progress", daemon=True)
    printer.start()
    try:
        yield (EpochProgressCallback(queue),)
    finally:
        done.set()
        printer.join(timeout=10)
        queue.shutdown()
