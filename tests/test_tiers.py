"""The guard of the test tiers (support/tiers.py): a test that starts Ray or a subprocess
without its marker fails, saying which marker to add. Nothing here starts either: each check
fails before the process or Ray would start."""
import subprocess
import sys

import pytest

from support import tiers
from support.runs import yolor_ray

Failed = pytest.fail.Exception


def test_the_cli_helper_needs_the_subprocess_marker():
    with tiers.guarding("t.py::unmarked", []):
        with pytest.raises(Failed, match=r"t.py::unmarked runs `yolor-ray train` in a subprocess but is not marked "
                                         r"'subprocess': mark it @pytest.mark.subprocess"):
            yolor_ray("train", "never-run.py")
    with tiers.guarding("t.py::ray_only", ["ray"]):
        with pytest.raises(Failed, match="is not marked 'subprocess'"):
            yolor_ray("tune", "never-run.py")


def test_ray_init_needs_the_ray_marker():
    import ray

    with tiers.guarding("t.py::unmarked", ["subprocess"]):
        with pytest.raises(Failed, match=r"t.py::unmarked calls ray.init but is not marked 'ray'"):
            ray.init(address="local")
    assert not ray.is_initialized()


def test_fixtures_that_start_ray_or_a_subprocess_need_their_markers():
    with tiers.guarding("t.py::unmarked", []):
        with pytest.raises(Failed, match="uses the fixture 'mmdet_checkpoint', which starts a subprocess,"):
            tiers.require_fixtures(["tmp_path", "mmdet_checkpoint"])
    with tiers.guarding("t.py::half", ["subprocess"]):
        with pytest.raises(Failed, match="fixture 'trained_baseline', which starts Ray, but is not marked 'ray'"):
            tiers.require_fixtures(["trained_baseline"])
    with tiers.guarding("t.py::marked", ["ray", "subprocess"]):
        tiers.require_fixtures(["trained_baseline", "mmdet_checkpoint"])


def test_a_program_of_this_environment_is_seen_even_where_the_failure_is_caught():
    """The audit hook refuses to start this environment's Python; a test whose code catches
    that still fails when its guard ends. Programs from elsewhere (gcc, true) are let through."""
    with pytest.raises(Failed, match=r"ran `\S+python -c pass` in a subprocess \(the failure was caught"):
        with tiers.guarding("t.py::unmarked", []):
            with pytest.raises(Failed, match=r"runs `\S+python -c pass` in a subprocess but is marked neither"):
                subprocess.run([sys.executable, "-c", "pass"])
            subprocess.run(["true"], check=True)
    with tiers.guarding("t.py::marked", ["subprocess"]):
        tiers.require(tiers.SUBPROCESS, "runs something")


def test_a_slow_unmarked_test_is_listed_after_the_run_and_a_marked_one_is_not():
    """``slow`` is not enforced (a test's time is the machine's too): SlowReport lists the
    fast-tier tests over SLOW_SECONDS, set-up and call together, with the marker to consider."""
    from types import SimpleNamespace

    report, half = tiers.SlowReport(), tiers.SLOW_SECONDS / 2 + 1
    marked = SimpleNamespace(nodeid="t.py::marked", iter_markers=lambda: [pytest.mark.slow.mark])
    report.pytest_runtest_protocol(marked)
    for nodeid, when, seconds in [("t.py::marked", "call", 4 * half), ("t.py::slow", "setup", half),
                                  ("t.py::slow", "call", half), ("t.py::slow", "teardown", 4 * half),
                                  ("t.py::quick", "call", 1.0)]:
        report.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, when=when, duration=seconds))
    lines = []
    report.pytest_terminal_summary(SimpleNamespace(section=lines.append, write_line=lines.append))
    assert lines[1:] == [f"{2 * half:6.1f} s  t.py::slow", lines[-1]] and "@pytest.mark.slow" in lines[-1]
    assert lines[0].startswith(f"fast-tier tests over {tiers.SLOW_SECONDS:.0f} s")
