"""MMEngine's MLflow backend, with the status its run ends in.

MMEngine's ``MLflowVisBackend.close`` always ends the run FINISHED. A run that ends early (a
trial stopped by the sweep's scheduler, a failure) must end KILLED or FAILED, and in that
same write: marking it after MMEngine's end leaves FINISHED whenever the process is ended in
between, and Tune ends a stopped trial's actor without waiting for its thread.
"""
from __future__ import annotations

from types import ModuleType

from mmengine.visualization import MLflowVisBackend

# MLflow's run statuses: a whole run, one the sweep's scheduler stopped, one that failed.
FINISHED, KILLED, FAILED = "FINISHED", "KILLED", "FAILED"


class StatusMLflowVisBackend(MLflowVisBackend):
    """``MLflowVisBackend`` whose run ends with :attr:`end_status` (FINISHED unless set
    before :meth:`close`); artifacts and everything else as MMEngine's."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.end_status = FINISHED

    def close(self) -> None:
        mlflow = getattr(self, "_mlflow", None)  # set by MMEngine once its run has started
        if mlflow is None or self.end_status == FINISHED:
            super().close()
            return
        self._mlflow = _EndingWith(mlflow, self.end_status)
        try:
            super().close()
        finally:
            self._mlflow = mlflow


class _EndingWith:
    """The ``mlflow`` module as MMEngine's backend calls it, ``end_run`` ending the run with
    ``status``."""

    def __init__(self, mlflow: ModuleType, status: str) -> None:
        self._mlflow = mlflow
        self._status = status

    def __getattr__(self, name: str):
        return getattr(self._mlflow, name)

    def end_run(self, status: str | None = None) -> None:  # MMEngine's FINISHED replaced
        self._mlflow.end_run(status=self._status)
