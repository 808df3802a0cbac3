"""Runs side by side through Tune, watched from the driver: :class:`TrialLines`, a Tune
callback (Tune calls it in the driver, on each trial's start, result, end and error) that
prints :class:`~.run_lines.RunLines`' lines, in place of Tune's own output: its boxed
status tables, each trial's result and config dumped, and a TensorBoard hint at a folder in
Ray's session directory. ``--verbose`` keeps Tune's output and prints none of ours.

Tune's own output is off through its public switches: ``RunConfig(verbose=0)`` with its
older output engine (``RAY_AIR_NEW_OUTPUT=0``: the newer one prints the experiment's box
and the hint even at 0), and ``TUNE_PRINT_ALL_TRIAL_ERRORS=0`` (each failure's traceback;
our line says why, the trial's error file and the run's logs keep the rest); its closing
list of the failed trials is filtered out.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Iterator

from ray import tune

from yolor_ray.paired.run_lines import LinesPlan, RunLines

QUIET_TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
REASON_CHARS = 300
TUNE_LOGGER = "ray.tune.tune"


class _NotTheFailedTrialsList(logging.Filter):
    """Tune's closing 'Trials did not complete: [paired_run_6ece0_00001]': each failed run has
    had its own line, with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Trials did not complete")


@contextlib.contextmanager
def tune_output(verbose: bool) -> Iterator[None]:
    """Around a Tuner's fit: Tune's own output off (``verbose``: left as it is)."""
    if verbose:
        yield
        return
    saved = {key: os.environ.get(key) for key in QUIET_TUNE_ENV}
    os.environ.update(QUIET_TUNE_ENV)
    failed_list = _NotTheFailedTrialsList()
    logging.getLogger(TUNE_LOGGER).addFilter(failed_list)
    try:
        yield
    finally:
        logging.getLogger(TUNE_LOGGER).removeFilter(failed_list)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_config_output(plan: LinesPlan, verbose: bool, name_key: str | None = None,
                      before: tuple[tune.Callback, ...] = ()) -> dict:
    """``tune.RunConfig``'s ``verbose`` and ``callbacks`` (fit inside :func:`tune_output`): our
    lines, or Tune's own (``verbose``). ``name_key``: the trial config's key naming its run
    (else the trial's id names it); ``before``: callbacks Tune calls before the lines' (one that
    ends the job on a run's failure: its line is the last)."""
    if verbose:
        return dict(verbose=1, callbacks=list(before))
    return dict(verbose=0, callbacks=[*before, TrialLines(plan, name_key)])


class TrialLines(tune.Callback):
    """Prints each trial's lines (:class:`RunLines`) as Tune reports its events."""

    def __init__(self, plan: LinesPlan, name_key: str | None = None):
        self.plan = plan
        self.name_key = name_key
        self.lines: RunLines | None = None

    def setup(self, **info):
        # Here, not in __init__: a restored sweep's Tuner unpickles this callback as it was.
        self.lines = RunLines(self.plan, time.monotonic())
        _print(self.lines.header())

    def _name(self, trial) -> str:
        return str(trial.config.get(self.name_key)) if self.name_key else trial.trial_id

    def _detail(self, trial) -> str:
        """The trial's searched settings (its whole config where the searcher names none)."""
        params = trial.evaluated_params or trial.config
        return " ".join(f"{key}={_short(value)}" for key, value in sorted(params.items()) if key != self.name_key)

    def _observe(self, trials) -> None:
        for trial in trials:
            self.lines.observe(self._name(trial), trial.status, int((trial.last_result or {}).get("epoch", 0)))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._observe(trials)
        _print(self.lines.started(self._name(trial), time.monotonic(), self._detail(trial)))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        _print(self.lines.reported(self._name(trial), result, time.monotonic()))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._observe(trials)
        _print(self.lines.ended(self._name(trial), time.monotonic()))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._observe(trials)
        _print(self.lines.failed(self._name(trial), error_reason(trial.error_file), time.monotonic()))

    def on_trial_recover(self, iteration, trials, trial, **info):
        _print(self.lines.failed(self._name(trial), error_reason(trial.error_file), time.monotonic(),
                                 restarting=True))

    def on_step_end(self, iteration, trials, **info):
        self._observe(trials)
        _print(self.lines.tick(time.monotonic()))

    def on_experiment_end(self, trials, **info):
        self._observe(trials)
        _print([self.lines.status(time.monotonic())])


def error_reason(error_file: str | None) -> str:
    """One line of why a trial failed: the last line of its latest error in Tune's error file
    (a Ray task error's text ends with the exception, ``RuntimeError: ...``)."""
    try:
        text = Path(error_file).read_text(errors="replace") if error_file else ""
    except OSError:
        text = ""
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    return last[:REASON_CHARS] or "no reason recorded (see the run's logs/)"


def _short(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=True)
