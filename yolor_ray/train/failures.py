"""Which failures of a Ray Train run end it at once: storage faults (``storage.storage_fault``).

Retrying a write to a full disk, a read-only folder or a deleted bucket fails again after
a restart of the worker group and its start-up, each time, and buries why under Ray's
tracebacks. Such a fault is raised where the write failed: a worker's checkpoint upload
(``train.worker``, :func:`upload_fault`; a Tune trial's, ``paired.trial``), Ray's controller
writing its record of the checkpoints, our driver's files. Ray Train hands the driver a
``TrainingFailedError`` wrapping it: :func:`run_storage_fault` finds it there, and
:class:`StorageFaultsEndTheRun` (Ray's failure policy with that one rule first) keeps Ray
from restarting the worker group for it. Every other failure (a killed worker, a lost node,
a reset connection, S3 throttling) is retried as ``FailureConfig(max_failures)`` says.

Ray's wrappers are those of ``ray.train.v2`` 2.60 (setup.py pins it); ``tests/test_storage_faults.py``
checks that they still wrap so.
"""
from __future__ import annotations

from typing import Iterator

from ray.exceptions import RayTaskError
from ray.train.v2._internal.constants import VALIDATE_STORAGE_MARKER_FILENAME
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2._internal.execution.failure_handling import DefaultFailurePolicy, FailureDecision
from ray.train.v2.api.exceptions import ControllerError, TrainingFailedError, WorkerGroupError

from yolor_ray.storage import StorageSpec, open_storage, storage_fault

# How Ray Train's error begins when the marker file it wrote in the run's folder is not there
# as a checkpoint is uploaded (its StorageContext checks it first).
RAY_MARKER_GONE = "Unable to set up cluster storage"


def upload_fault(err: BaseException, storage: StorageSpec, *folder: str) -> str | None:
    """The storage fault of a checkpoint upload that failed (``ray.train.report``, ``tune.report``),
    if it was one: :func:`storage_fault`'s, or Ray's marker file gone from ``folder`` (parts
    under the storage: a Ray Train run's folder; none: a Tune experiment's, the storage itself).
    Then the folder or the bucket was deleted, or this node sees another folder than the
    driver's: a probe of the marker says which (NoSuchBucket ...); a probe that fails for a
    transient reason, or finds the marker after all, leaves the error to Ray's retries."""
    fault = storage_fault(err)
    if fault is not None or not (isinstance(err, RuntimeError) and str(err).startswith(RAY_MARKER_GONE)):
        return fault
    try:
        there = open_storage(storage).size(*folder, VALIDATE_STORAGE_MARKER_FILENAME) is not None
    except Exception as probe:
        return storage_fault(probe)
    if there:
        return None
    return (f"Ray's marker file {VALIDATE_STORAGE_MARKER_FILENAME} is gone from the folder Ray writes to (deleted, "
            "or this node does not share the driver's storage)")


def run_storage_fault(err: BaseException) -> str | None:
    """The storage fault (:func:`yolor_ray.storage.storage_fault`'s words) that failed a Ray
    Train run, if one did: in a worker's error, the controller's, or ``err`` itself."""
    for failure in _failures(err):
        fault = storage_fault(failure)
        if fault is not None:
            return fault
    return None


def _failures(err: BaseException) -> Iterator[BaseException]:
    """The errors inside Ray Train's: each worker's, the controller's, a remote task's cause."""
    yield err
    if isinstance(err, WorkerGroupError):
        for failure in err.worker_failures.values():
            yield from _failures(failure)
    elif isinstance(err, ControllerError):
        yield from _failures(err.controller_failure)
    elif isinstance(err, UserExceptionWithTraceback):
        yield from _failures(err._base_exc)  # the worker's own exception (Ray keeps its traceback as text)
    elif isinstance(err, RayTaskError) and err.cause is not None and err.cause is not err:
        yield from _failures(err.cause)


class StorageFaultsEndTheRun(DefaultFailurePolicy):
    """Ray Train's default failure policy, except that a storage fault is raised at once,
    whatever ``max_failures`` allows."""

    def make_decision(self, training_failed_error: TrainingFailedError) -> FailureDecision:
        if run_storage_fault(training_failed_error) is None:
            return super().make_decision(training_failed_error)
        self._log_decision(FailureDecision.RAISE, training_failed_error, error_count=1, retry_limit=0)
        return FailureDecision.RAISE
