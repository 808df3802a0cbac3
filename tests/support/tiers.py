"""The test tiers: pytest.ini's ``ray`` marker (the test starts Ray: a local one, a cluster,
or the CLI's ``train`` / ``tune``), ``subprocess`` (it runs a program in a subprocess:
the CLI, mmdet's tools, a bench script, ``mp.spawn``'s ranks) and ``slow`` (it builds
full-size models or trains several iterations). ``make test-fast`` runs the tests marked
none of them; ``make test`` runs them all.

A test that starts one without its marker fails, with the marker to add:

* ``ray.init`` and the helpers that start a Ray cluster or the CLI call :func:`require`;
* a fixture that does (:data:`FIXTURES`) is checked when a test asks for it, since a
  session fixture runs once, for the first test that asks;
* any program of this environment (its Python, Ray's binaries, the ``ray`` command)
  started through ``subprocess`` is seen by an audit hook, which observes and wraps
  nothing; other programs (MMEngine's Runner asks ``gcc`` for its environment report)
  are not counted. ``mp.spawn`` raises no audit event: its tests carry the marker by hand.

``slow`` has no event to watch (building a model is no system call) and a test's time
depends on the CPU and on what else runs, so it is not enforced: a test of the fast tier
that takes over :data:`SLOW_SECONDS` is listed at the end of the run (:class:`SlowReport`),
with the marker to consider.

Both conftests (tests/, bench/tests/) import the hooks below; :func:`install` runs once.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

import pytest

RAY, SUBPROCESS, SLOW = "ray", "subprocess", "slow"
# A fast-tier test over this (set-up and call, wall time) is listed at the end of the run; the fast
# tier's budget is 5 minutes for its ~300 tests on 2 cores.
SLOW_SECONDS = 15.0
# Fixtures that start Ray or a subprocess, with the markers a test asking for them needs.
FIXTURES = {"mmdet_checkpoint": (SUBPROCESS,), "trained_baseline": (RAY, SUBPROCESS)}

_test: str | None = None  # the test now in setup or call; None between tests and in teardown
_markers: frozenset[str] = frozenset()
_missed: list[str] = []  # what the audit hook saw, in case the code under test swallowed the failure
_installed = False


def _advice(marker: str) -> str:
    return (f"mark it @pytest.mark.{marker} (pytest.ini's tiers: `make test-fast` runs only the tests "
            "marked neither ray nor subprocess)")


def require(marker: str, what: str) -> None:
    """Fail the running test unless it is marked ``marker``; ``what``: what it did, e.g. 'calls ray.init'."""
    if _test is not None and marker not in _markers:
        pytest.fail(f"{_test} {what} but is not marked {marker!r}: {_advice(marker)}", pytrace=False)


def _in_this_environment(program: str, env) -> bool:
    if not os.path.isabs(program):
        program = shutil.which(program, path=(env if env is not None else os.environ).get("PATH")) or program
    return os.path.abspath(program).startswith(os.path.join(sys.prefix, ""))


def _audit(event: str, args: tuple) -> None:
    if event != "subprocess.Popen" or _test is None or _markers & {RAY, SUBPROCESS}:
        return
    executable, argv, _cwd, env = args
    program = os.fsdecode(executable if executable is not None else argv[0])
    if not _in_this_environment(program, env):
        return
    line = " ".join(map(os.fsdecode, argv if isinstance(argv, (list, tuple)) else [argv]))[:200]
    _missed.append(line)
    pytest.fail(f"{_test} runs `{line}` in a subprocess but is marked neither 'subprocess' nor 'ray': "
                f"{_advice(SUBPROCESS)}", pytrace=False)


def install() -> None:
    """The audit hook and the ``ray.init`` check, once per session."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.addaudithook(_audit)
    import ray

    init = ray.init

    @functools.wraps(init)
    def checked_init(*args, **kwargs):
        require(RAY, "calls ray.init")
        return init(*args, **kwargs)

    ray.init = checked_init


@contextmanager
def guarding(test: str, markers: Iterable[str]) -> Iterator[None]:
    """The guard on for ``test`` (a node id) marked ``markers``, the one around it back after.
    Fails the test at the end when the audit hook saw a program started whose failure the
    code under test caught."""
    global _test, _markers
    outer = _test, _markers, list(_missed)
    _test, _markers, _missed[:] = test, frozenset(markers), []
    try:
        yield
    finally:
        missed = list(_missed)
        _test, _markers, _missed[:] = outer
    if missed:
        pytest.fail(f"{test} ran `{missed[0]}` in a subprocess (the failure was caught by the code under test) "
                    f"but is marked neither 'subprocess' nor 'ray': {_advice(SUBPROCESS)}", pytrace=False)


def require_fixtures(fixturenames: Iterable[str]) -> None:
    """Fail the running test when it asks for a fixture of :data:`FIXTURES` without its markers."""
    for name in sorted(set(FIXTURES) & set(fixturenames)):
        for marker in FIXTURES[name]:
            require(marker, f"uses the fixture {name!r}, which starts {'Ray' if marker == RAY else 'a subprocess'},")


class SlowReport:
    """Lists, after the run, the tests of the fast tier (marked none of the tiers) that took over
    :data:`SLOW_SECONDS`: a hint, not a failure, since the time is the machine's as much as the test's."""

    def __init__(self) -> None:
        self.tiered: set[str] = set()  # tests marked with a tier
        self.seconds: dict[str, float] = {}

    def pytest_runtest_protocol(self, item) -> None:
        if {mark.name for mark in item.iter_markers()} & {RAY, SUBPROCESS, SLOW}:
            self.tiered.add(item.nodeid)

    def pytest_runtest_logreport(self, report) -> None:
        if report.when in ("setup", "call") and report.nodeid not in self.tiered:
            self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_terminal_summary(self, terminalreporter) -> None:
        over = sorted(((s, t) for t, s in self.seconds.items() if s > SLOW_SECONDS), reverse=True)
        if not over:
            return
        terminalreporter.section(f"fast-tier tests over {SLOW_SECONDS:.0f} s (set-up and call)")
        for seconds, test in over:
            terminalreporter.write_line(f"{seconds:6.1f} s  {test}")
        terminalreporter.write_line(f"mark them @pytest.mark.{SLOW} if they are slow on any machine "
                                    "(`make test-fast` leaves slow tests to `make test`)")


def pytest_configure(config) -> None:
    install()
    if not config.pluginmanager.has_plugin("tiers-slow-report"):
        config.pluginmanager.register(SlowReport(), "tiers-slow-report")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with guarding(item.nodeid, (mark.name for mark in item.iter_markers())):
        require_fixtures(item.fixturenames)
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with guarding(item.nodeid, (mark.name for mark in item.iter_markers())):
        return (yield)
