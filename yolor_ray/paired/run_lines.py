"""What the driver prints while runs train side by side through Tune (a sweep's trials, a
reproduction's or a confirmation's runs), decided from Tune's events: each run's start, its
epochs (every one while few runs train; at most about :data:`EPOCH_LINES_PER_MINUTE` in all
while many do), its end or failure with the reason, and a status line now and then with the
ETA from the epochs' times. The lines' words are :mod:`yolor_ray.train.lines`'; the Tune
callback that feeds this is :mod:`.progress`. No Ray here: times come in as arguments.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from yolor_ray.metrics import SCORE_METRIC
from yolor_ray.records import EPOCH_TIME
from yolor_ray.train.lines import (
    Tally,
    run_ended_line,
    run_epoch_line,
    run_failed_line,
    run_started_line,
    status_line,
    tensorboard_hint,
)

# All runs' epoch lines together, about at most this many a minute: a run's next epoch line
# waits 60 s x running / this (every epoch while that is shorter than an epoch).
EPOCH_LINES_PER_MINUTE = 20
STATUS_EVERY_S = 300.0  # a status line at least this often while runs train
STATUS_AFTER_END_S = 30.0  # and after a run ends, unless one came this recently

RUNNING, PENDING, DONE, STOPPED, FAILED = "running", "pending", "done", "stopped", "failed"
# Tune's trial statuses (Trial.TERMINATED ...) as plain strings
TUNE_TERMINATED, TUNE_ERROR, TUNE_RUNNING = "TERMINATED", "ERROR", "RUNNING"


@dataclass(frozen=True)
class LinesPlan:
    """What the lines of one fit know beforehand."""

    noun: str  # 'trial' or 'run'
    total: int  # runs this fit trains
    epochs: int  # each run's epochs (its last epoch's number) ...
    location: str  # the sweep's or reproduction's folder, for TensorBoard
    epochs_of: dict[str, int] = field(default_factory=dict)  # ... where a run has other epochs than ``epochs``
    metric: str = SCORE_METRIC
    at_a_time: int = 1


@dataclass
class _Run:
    epochs: int
    started_at: float
    attempt: int = 1
    first_epoch: int | None = None  # the first epoch reported since it started (a resumed run's is later)
    epoch: int = 0
    record: dict = field(default_factory=dict)
    last_line_at: float = 0.0
    last_report_at: float = 0.0


class RunLines:
    """The lines of one fit, from its events (each method returns the lines to print, maybe none)."""

    def __init__(self, plan: LinesPlan, now: float):
        self.plan = plan
        self.start = now
        self.states: dict[str, str] = {}  # run -> RUNNING, PENDING, DONE, STOPPED, FAILED
        self.runs: dict[str, _Run] = {}  # the runs started since this driver started
        self.epoch_times: list[float] = []
        self.last_status_at = now

    def header(self) -> list[str]:
        return [tensorboard_hint(self.plan.location)]

    def _who(self, name: str) -> str:
        return f"{self.plan.noun} {name}"

    def epochs_of(self, name: str) -> int:
        return self.plan.epochs_of.get(name, self.plan.epochs)

    def observe(self, name: str, tune_status: str, epoch: int = 0) -> None:
        """What Tune says of a run this driver has not seen start or end (a restored sweep's
        finished trials, trials not yet started): a state this driver set is kept."""
        if self.states.get(name, PENDING) != PENDING:
            return
        if tune_status == TUNE_TERMINATED:
            self.states[name] = STOPPED if _stopped_early(epoch, self.epochs_of(name)) else DONE
        elif tune_status == TUNE_ERROR:
            self.states[name] = FAILED
        else:  # running without a start this driver saw: one line when it reports
            self.states[name] = PENDING

    def started(self, name: str, now: float, detail: str = "") -> list[str]:
        attempt = self.runs[name].attempt + 1 if name in self.runs else 1
        self.runs[name] = _Run(self.epochs_of(name), now, attempt, last_line_at=now, last_report_at=now)
        self.states[name] = RUNNING
        return [run_started_line(self._who(name), detail, attempt)]

    def reported(self, name: str, record: dict, now: float) -> list[str]:
        lines = [] if name in self.runs else self.started(name, now)  # started before this driver saw it
        run = self.runs[name]
        run.epoch = int(record.get("epoch", run.epoch))
        run.first_epoch = run.epoch if run.first_epoch is None else run.first_epoch
        run.record = dict(record)
        epoch_s = record.get(EPOCH_TIME)
        self.epoch_times.append(float(epoch_s) if isinstance(epoch_s, (int, float)) else now - run.last_report_at)
        run.last_report_at = now
        gap = 60.0 * self.tally().running / EPOCH_LINES_PER_MINUTE
        if run.epoch < run.epochs and now - run.last_line_at < gap:
            return lines
        run.last_line_at = now
        return [*lines, run_epoch_line(self._who(name), record, run.epochs, now - run.started_at, run.first_epoch,
                                       self.plan.metric)]

    def ended(self, name: str, now: float) -> list[str]:
        """A run that ended without an error: done, or stopped early (fewer epochs than its last)."""
        run = self.runs.get(name) or _Run(self.epochs_of(name), now)
        stopped = _stopped_early(run.epoch, run.epochs)
        self.states[name] = STOPPED if stopped else DONE
        line = run_ended_line(self._who(name), run.epoch, run.epochs, run.record, now - run.started_at,
                              self.plan.metric, stopped_early=stopped)
        return [line, *self._status_after_end(now)]

    def failed(self, name: str, reason: str, now: float, restarting: bool = False) -> list[str]:
        """A run's error; ``restarting``: Tune trains it again (it goes back to pending)."""
        run = self.runs.get(name) or _Run(self.epochs_of(name), now)
        self.states[name] = PENDING if restarting else FAILED
        line = run_failed_line(self._who(name), run.epoch, run.epochs, now - run.started_at, reason, restarting)
        return [line] if restarting else [line, *self._status_after_end(now)]

    def tick(self, now: float) -> list[str]:
        """Between events: a status line when none came for :data:`STATUS_EVERY_S`."""
        if now - self.last_status_at < STATUS_EVERY_S or not self.tally().left:
            return []
        return [self.status(now)]

    def _status_after_end(self, now: float) -> list[str]:
        if not self.tally().left or now - self.last_status_at < STATUS_AFTER_END_S:
            return []  # the last one comes at the end
        return [self.status(now)]

    def status(self, now: float) -> str:
        self.last_status_at = now
        return status_line(self.plan.noun, self.tally(), now - self.start, self.eta_s())

    def tally(self) -> Tally:
        counts = {state: 0 for state in (RUNNING, PENDING, DONE, STOPPED, FAILED)}
        for state in self.states.values():
            counts[state] += 1
        accounted = counts[RUNNING] + counts[DONE] + counts[STOPPED] + counts[FAILED]
        return Tally(done=counts[DONE], running=counts[RUNNING], pending=max(self.plan.total - accounted, 0),
                     failed=counts[FAILED], stopped=counts[STOPPED])

    def eta_s(self) -> float | None:
        """The epochs left (every pending run's, all of them) x the median epoch's time, over the
        runs that train at a time; None before the first epoch's time is known."""
        if not self.epoch_times:
            return None
        tally = self.tally()
        left = sum(max(run.epochs - run.epoch, 0) for name, run in self.runs.items()
                   if self.states.get(name) == RUNNING)
        left += tally.pending * max([self.plan.epochs, *self.plan.epochs_of.values()])
        lanes = max(1, min(self.plan.at_a_time, tally.left))
        return left * statistics.median(self.epoch_times) / lanes


def _stopped_early(epoch: int, epochs: int) -> bool:
    """Ended after some epochs, before its last; a run that reported none had none left to
    train (its last epoch's checkpoint was there, its results were not)."""
    return 0 < epoch < epochs
