"""The lines the drivers print while runs train, written once: ``train``'s epoch line, and
for runs side by side (``tune``'s trials, ``reproduce``'s and ``tune --confirm``'s runs)
each run's start, epochs and end, and a status line. Light: no Ray, no torch."""
from __future__ import annotations

from dataclasses import dataclass

from yolor_ray.metrics import RESTARTS, SCORE_METRIC, TRAIN_LOSS


def format_duration(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def metric_label(metric: str) -> str:
    """'coco/bbox_mAP' -> 'bbox_mAP'."""
    return metric.split("/")[-1]


def metric_value(record: dict, metric: str) -> str:
    """``bbox_mAP 0.123``, or ``bbox_mAP -`` where the record has none (an epoch that did not validate)."""
    value = record.get(metric)
    return f"{metric_label(metric)} {value:.3f}" if isinstance(value, (int, float)) else f"{metric_label(metric)} -"


def epoch_line(record: dict, epochs: int, elapsed_s: float, first_epoch: int, metric: str = SCORE_METRIC) -> str:
    """``epoch 2/12  loss 1.234  bbox_mAP 0.123  elapsed 1:02  ETA 5:10  restarts 0``; the ETA from
    the pace of the epochs this driver has seen (a resumed run's earlier epochs not counted)."""
    epoch = int(record.get("epoch", 0))
    done = max(epoch - first_epoch + 1, 1)
    eta = elapsed_s / done * max(epochs - epoch, 0)
    loss = record.get(TRAIN_LOSS)
    return "  ".join([
        f"epoch {epoch}/{epochs}",
        f"loss {loss:.4f}" if isinstance(loss, (int, float)) else "loss -",
        metric_value(record, metric),
        f"elapsed {format_duration(elapsed_s)}",
        f"ETA {format_duration(eta)}",
        f"restarts {int(record.get(RESTARTS, 0))}",
    ])


# Runs side by side: each line starts with the run, e.g. 'trial 5e870_00001' or 'run atss-yolor-seed0'.

def run_started_line(run: str, detail: str = "", attempt: int = 1) -> str:
    """``trial 5e870_00001 started: lr=0.02 placements=fpn``; a restarted one says which attempt."""
    again = f" (attempt {attempt})" if attempt > 1 else ""
    return f"{run} started{again}" + (f": {detail}" if detail else "")


def run_epoch_line(run: str, record: dict, epochs: int, elapsed_s: float, first_epoch: int,
                   metric: str = SCORE_METRIC) -> str:
    """``run atss-yolor-seed0  epoch 2/12  loss ...``: :func:`epoch_line`, its run in front."""
    return f"{run}  {epoch_line(record, epochs, elapsed_s, first_epoch, metric)}"


def run_ended_line(run: str, epoch: int, epochs: int, record: dict, elapsed_s: float, metric: str = SCORE_METRIC,
                   stopped_early: bool = False) -> str:
    """``trial 5e870_00001 done: 3/3 epochs, bbox_mAP 0.312, 2:41``, or ``... stopped early at
    epoch 1/3, bbox_mAP 0.000, 0:52`` (by the scheduler, ASHA); ``epoch`` 0: it reported no epoch
    (none was left to train)."""
    if not epoch:
        return f"{run} done: no epoch left to train, {format_duration(elapsed_s)}"
    how = f"stopped early at epoch {epoch}/{epochs}" if stopped_early else f"done: {epoch}/{epochs} epochs"
    return f"{run} {how}, {metric_value(record, metric)}, {format_duration(elapsed_s)}"


def run_failed_line(run: str, epoch: int, epochs: int, elapsed_s: float, reason: str, restarting: bool = False) -> str:
    """``run faster-rcnn-yolor-seed1 failed at epoch 1/2 after 0:35: RuntimeError: planted failure``;
    ``restarting``: Tune trains it again (from its latest checkpoint, when it has one)."""
    where = f"at epoch {epoch}/{epochs}" if epoch else "before its first epoch"
    then = ", restarting" if restarting else ""
    return f"{run} failed {where} after {format_duration(elapsed_s)}{then}: {reason}"


@dataclass(frozen=True)
class Tally:
    """How many runs of a fit are where."""

    done: int = 0
    running: int = 0
    pending: int = 0
    failed: int = 0
    stopped: int = 0  # ended early by the scheduler (ASHA)

    @property
    def left(self) -> int:
        return self.running + self.pending


def status_line(noun: str, tally: Tally, elapsed_s: float, eta_s: float | None) -> str:
    """``trials: 2 done, 1 stopped early, 1 running, 0 pending, 0 failed  elapsed 3:10  ETA 1:05``
    (``stopped early`` only where some were)."""
    counts = [f"{tally.done} done"] + ([f"{tally.stopped} stopped early"] if tally.stopped else []) + [
        f"{tally.running} running", f"{tally.pending} pending", f"{tally.failed} failed"]
    eta = "-" if eta_s is None else format_duration(eta_s)
    return f"{noun}s: {', '.join(counts)}  elapsed {format_duration(elapsed_s)}  ETA {eta}"


def tensorboard_hint(location: str) -> str:
    """Where TensorBoard finds the runs' events: the storage folder (each run's logs/ under it)."""
    if "://" in location:
        return (f"TensorBoard: the runs' events are under {location}; copy a run or a sweep with "
                "`yolor-ray pull URI DIR`, then `tensorboard --logdir DIR`")
    return f"TensorBoard: tensorboard --logdir {location}"
