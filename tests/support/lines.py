"""Reading the driver's lines of runs side by side (yolor_ray.train.lines) back, for the tests
of their logic and of real sweeps' and reproductions' output."""
from __future__ import annotations

import re

EPOCH = re.compile(r"^(run|trial) (\S+)  epoch (\d+)/(\d+)  ")
STATUS = re.compile(r"^(?:run|trial)s: (?P<done>\d+) done, (?:(?P<stopped>\d+) stopped early, )?(?P<running>\d+) "
                    r"running, (?P<pending>\d+) pending, (?P<failed>\d+) failed  elapsed ")
# What Tune's own output and MMEngine's driver-side INFO lines look like
NOT_OURS = ("╭", "╰", "+-----", "Trial name", "Trial status", "paramwise_options", "mmengine - INFO",
            "To visualize your results with TensorBoard", "View detailed results here")


def epoch_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if EPOCH.match(line)]


def status_counts(line: str) -> dict[str, int] | None:
    """A status line's counts (``stopped`` only where it has some), else None."""
    match = STATUS.match(line)
    if match is None:
        return None
    return {key: int(value) for key, value in match.groupdict().items() if value is not None}


def check_run_lines(stdout: str, stderr: str, noun: str, runs: dict[str, int], folder, metric: str = "bbox_mAP",
                    failed: tuple[str, ...] = ()) -> dict:
    """A real fit's terminal: none of Tune's tables or MMEngine's INFO lines; TensorBoard at
    ``folder``; each of ``runs`` (name -> its epochs) started once and ended once (done with
    its metric, stopped early, or one of ``failed``), its epoch lines with their metric; status lines
    whose last counts every run. Returns what it read (lines per run, the statuses)."""
    terminal = stdout + stderr
    for text in NOT_OURS:
        assert text not in terminal, (text, terminal[-4000:])
    lines = stdout.splitlines()
    assert f"TensorBoard: tensorboard --logdir {folder}" in lines, stdout[-3000:]
    per_run = {}
    for name, epochs in runs.items():
        who = f"{noun} {name}"
        mine = [line for line in lines if line.startswith(f"{who} ") or line.startswith(f"{who}  ")]
        starts = [line for line in mine if re.match(rf"{re.escape(who)} started($|: )", line)]
        assert len(starts) == 1 and mine[0] == starts[0], mine
        ends = [line for line in mine if re.match(rf"{re.escape(who)} (done|stopped early|failed)", line)]
        assert len(ends) == 1, (name, mine)
        if name in failed:
            assert ends[0].startswith(f"{who} failed "), ends
        else:
            # 'no epoch left': a resumed run whose last epoch's checkpoint was there, its results not
            assert re.match(rf"{re.escape(who)} (done: no epoch left to train|(done: {epochs}/{epochs} epochs|"
                            rf"stopped early at epoch \d+/{epochs}), {metric} \d\.\d{{3}}), ", ends[0]), ends
        for line in epoch_lines(mine):
            assert int(EPOCH.match(line).group(4)) == epochs and re.search(rf"  {metric} (\d\.\d{{3}}|-)  ", line), line
        per_run[name] = mine
    statuses = [counts for counts in map(status_counts, lines) if counts is not None]
    assert statuses, stdout[-3000:]
    last = statuses[-1]
    assert last["running"] == last["pending"] == 0 and sum(last.values()) == len(runs), last
    assert last["failed"] == len(failed), last
    return dict(per_run=per_run, statuses=statuses)
