"""results.json of the trials ASHA stopped: their runs ended with their processes, so the
sweep's driver writes it once Tune is done, from each run's manifest and latest checkpoint."""
from __future__ import annotations

from pathlib import PurePosixPath

from yolor_ray.layout import RESULTS_FILE, RUN_FILE
from yolor_ray.records import RunManifest
from yolor_ray.train.checkpoints import latest_checkpoint
from yolor_ray.train.outputs import write_results


def record_stopped_trial(runs, result) -> None:
    """results.json of a trial that ASHA stopped: its run ended with its process, so it is
    written here, once, from the run's manifest and its latest checkpoint's run state."""
    trial_id = (result.metrics or {}).get("trial_id")
    if result.error is not None or trial_id is None or runs.read_text(trial_id, RESULTS_FILE) is not None:
        return
    # An in-process trial's checkpoints are Tune's (in its run folder), a TorchTrainer's Ray Train's.
    checkpoint = PurePosixPath(result.checkpoint.path).name if result.checkpoint else latest_checkpoint(runs, trial_id)
    manifest = runs.read_text(trial_id, RUN_FILE)
    if checkpoint is None or manifest is None:
        return  # stopped before its first checkpoint: the leaderboard says so
    write_results(runs, trial_id, RunManifest.from_json(manifest), checkpoint,
                  wall_time_s=float(result.metrics.get("time_total_s", 0.0)))
