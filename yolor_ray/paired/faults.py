"""A storage fault in one run ends the whole job of runs trained through Tune (a sweep's trials,
a confirmation's or a reproduction's runs), at once and in one line.

The runs of a job share one storage: a full disk, a quota, a read-only folder, a denied or
deleted bucket (``storage.storage_fault``) that one run met, the others would meet too, and
Tune would restore that run ``--max-failures`` times to meet it again. So
:class:`StorageFaultsEndTheJob`, a Tune callback in the driver, reads why a trial failed (the
error Tune pickled for it on this machine; a run names its storage faults as
``StorageFaultError`` where they happen: ``paired.trial``, ``train.driver``) and, for a
storage fault, raises the job's :class:`JobStorageFaultError` in Tune's loop, before Tune
restores the trial or starts another. Tune ends the fit on it (wrapped in its ``TuneError``,
the callback's error its context); :func:`fit_ending_on_storage_faults` unwraps it into the
job's one line. Any other failure is left to Tune: retried up to ``--max-failures``, then the
run is marked failed and the others go on.

Why raise, not a ``tune.Stopper``: a stopper ends the unfinished trials as TERMINATED, which a
restored sweep counts as finished (``Tuner.restore`` continues only unfinished and errored
trials). An error out of ``Tuner.fit`` leaves Tune's saved state as the driver last wrote it,
as a stopped driver does, and the same command resumes it (Tune's documented way back after
an error outside the trials).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass

from ray import tune

from yolor_ray.storage import StorageFaultError, StorageSpec, open_storage
from yolor_ray.train.checkpoints import resume_checkpoint
from yolor_ray.train.failures import run_storage_fault


class JobStorageFaultError(StorageFaultError):
    """A run's storage fault that ended its job; its message is the job's one line."""


@dataclass(frozen=True)
class Job:
    """What a Tuner's runs are part of, as its one line names it. ``kind``: 'sweep',
    'confirmation', 'reproduction'; ``location``: its folder; ``name``: its ``--name``;
    ``runs``: the folder of its runs (each run's folder in it); ``noun``: what a trial trains
    ('run'; a sweep's 'trial'); ``name_key``: the trial config's key naming its run (None:
    the trial's id names it)."""

    kind: str
    location: str
    name: str
    runs: StorageSpec
    noun: str = "run"
    name_key: str | None = None


def trial_storage_fault(trial) -> str | None:
    """The storage fault (``storage.storage_fault``'s words) that failed a Tune trial, if its
    latest error was one: from the error Tune pickled in the trial's local folder. None for
    any other error, and where no pickled error reads (Tune's text alone: not told apart)."""
    path = getattr(trial, "pickled_error_file", None)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            error = pickle.load(f)
    except Exception:  # missing, or a class this process cannot import: not one of ours
        return None
    return run_storage_fault(error) if isinstance(error, BaseException) else None


class StorageFaultsEndTheJob(tune.Callback):
    """Ends the job (raises its one line out of ``Tuner.fit``) once a trial failed on a storage
    fault, whether Tune would restore it (``on_trial_recover``) or not (``on_trial_error``).
    First among the callbacks: the run's lines (``paired.progress``) then print no failure
    line of their own before the job's."""

    def __init__(self, job: Job):
        self.job = job

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._end_on_storage_fault(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end_on_storage_fault(trial)

    def _end_on_storage_fault(self, trial) -> None:
        fault = trial_storage_fault(trial)
        if fault is not None:
            run = str(trial.config.get(self.job.name_key)) if self.job.name_key else trial.trial_id
            raise job_storage_fault(self.job, run, fault)


def fit_ending_on_storage_faults(tuner: tune.Tuner):
    """``tuner.fit()`` (its callbacks with a :class:`StorageFaultsEndTheJob`); a run's storage
    fault raised as the job's one line alone, without Tune's wrapping and its tracebacks."""
    try:
        return tuner.fit()
    except Exception as err:
        ended = _job_fault_in(err)
        if ended is None:
            raise
        raise ended from None


def _job_fault_in(err: BaseException) -> JobStorageFaultError | None:
    """The :class:`JobStorageFaultError` that ``err`` is, or was raised from or during."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, JobStorageFaultError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def job_storage_fault(job: Job, run: str, fault: str) -> JobStorageFaultError:
    """The job's storage fault, met by ``run``, its message the job's one line: the storage, the
    fault, the run and its last whole checkpoint, the command that resumes."""
    storage = open_storage(job.runs)
    try:
        kept = resume_checkpoint(storage, run)
        checkpoint = (f"{run}'s last whole checkpoint is {kept.folder} (epoch {kept.epochs})" if kept
                      else f"{run} has no whole checkpoint")
    except Exception as err:  # the storage cannot be read either
        checkpoint = f"{run}'s checkpoints cannot be listed now ({type(err).__name__})"
    where = storage.location()
    line = (f"{job.kind} {job.location!r} stopped: its {job.noun} {run} met a storage fault: a write to "
            f"{where!r} failed with {' '.join(fault.split())}, which retrying cannot fix, and every {job.noun} of "
            f"the {job.kind} writes there; {checkpoint}; once that is fixed, the same command with --name "
            f"{job.name} resumes the {job.kind}: {job.noun}s done are kept, unfinished ones continue from their "
            "last whole checkpoint")
    return JobStorageFaultError(where, fault, line)
