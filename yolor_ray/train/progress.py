"""One line per epoch on the driver: epoch/epochs, loss, the main AP, elapsed, ETA, restarts.

Ray Train calls its callbacks in its controller actor, not in the driver, and the driver
does not stream actors' output (``--verbose`` does): the callback puts each epoch's
metrics on a Ray queue, and a thread of the driver prints them as they come.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Iterator

import ray
from ray.train import UserCallback
from ray.util.queue import Empty, Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from yolor_ray.metrics import RESTARTS, SCORE_METRIC, TRAIN_LOSS


class EpochProgressCallback(UserCallback):
    """Puts rank 0's metrics of each report on ``queue`` (runs in Ray Train's controller)."""

    def __init__(self, queue: Queue):
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint):
        if not metrics:
            return
        try:
            self.queue.put(dict(metrics[0]))
        except Exception as err:  # noqa: BLE001 - a progress line must never fail the training
            logging.getLogger("yolor_ray").warning("epoch progress line lost: %s", err)


def format_duration(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def epoch_line(record: dict, epochs: int, elapsed_s: float, first_epoch: int) -> str:
    """``epoch 2/12  loss 1.234  bbox_mAP 0.123  elapsed 1:02  ETA 5:10  restarts 0``; the ETA from
    the pace of the epochs this driver has seen (a resumed run's earlier epochs not counted)."""
    epoch = int(record.get("epoch", 0))
    done = max(epoch - first_epoch + 1, 1)
    eta = elapsed_s / done * max(epochs - epoch, 0)
    loss = record.get(TRAIN_LOSS)
    score = record.get(SCORE_METRIC)
    return "  ".join([
        f"epoch {epoch}/{epochs}",
        f"loss {loss:.4f}" if isinstance(loss, (int, float)) else "loss -",
        f"{SCORE_METRIC.split('/')[-1]} {score:.3f}" if isinstance(score, (int, float)) else
        f"{SCORE_METRIC.split('/')[-1]} -",
        f"elapsed {format_duration(elapsed_s)}",
        f"ETA {format_duration(eta)}",
        f"restarts {int(record.get(RESTARTS, 0))}",
    ])


@contextlib.contextmanager
def epoch_progress(epochs: int, enabled: bool = True) -> Iterator[tuple]:
    """Ray Train callbacks to pass to the trainer (none when disabled); while inside, each
    epoch's line is printed on this driver's stdout."""
    if not enabled:
        yield ()
        return
    # No CPU from the workers, and on the driver's node: on a worker node it would die with
    # that node (failing the controller's callback) and keep the node from idling down.
    queue = Queue(actor_options=dict(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        ray.get_runtime_context().get_node_id(), soft=False)))
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
