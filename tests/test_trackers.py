"""--tracker: the backends built from the trackers' environment variables, and the errors
a user gets before any cluster time. Real runs with MLflow and W&B: test_storage, test_tune."""
import importlib.util

import pytest

from yolor_ray.train.trackers import TrackerError, check_trackers, tracker_backends, tracker_params, tracker_settings

from support.paths import ATSS
from support.runs import yolor_ray

PARAMS = tracker_params({"placements": ["fpn", "pred"], "modeling": "vector"}, 0.01, "ATSS", "atss.py", 2, 12, 4)


def _visualizer(tmp_path, trackers: tuple[str, ...], run_name: str, env: dict):
    """A real Visualizer with the trackers' backends and a config added, as the Runner makes
    it on rank 0 (a run's log folder: ``tmp_path/work``)."""
    from mmengine.config import Config
    from mmengine.visualization import Visualizer

    import yolor_ray.registrations  # noqa: F401  (the MLflow backend's type)

    backends = tracker_backends(trackers, run_name, PARAMS, tracker_settings(env))
    visualizer = Visualizer(name=run_name, vis_backends=backends, save_dir=str(tmp_path / "vis"))
    (tmp_path / "work").mkdir()
    visualizer.add_config(Config(dict(work_dir=str(tmp_path / "work"), train_cfg={}, auto_scale_lr={},
                                      randomness={})))
    return visualizer


def test_params_flatten_the_variant():
    assert PARAMS["implicit.placements"] == "fpn+pred" and PARAMS["implicit.modeling"] == "vector"
    assert PARAMS["lr"] == "0.01" and PARAMS["yolor"] == "True" and PARAMS["num_workers"] == "2"


def test_backends_from_the_standard_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = dict(MLFLOW_TRACKING_URI="sqlite:///mlflow.db", MLFLOW_EXPERIMENT_NAME="exp", WANDB_PROJECT="proj",
               WANDB_MODE="offline", WANDB_DIR="wb", WANDB_API_KEY="never-passed-on")
    settings = tracker_settings(env)
    assert "WANDB_API_KEY" not in settings  # never read
    mlflow, wandb = tracker_backends(("mlflow", "wandb"), "run-1", PARAMS, settings)
    # relative sqlite path made absolute: Ray moves the workers' working directory
    assert mlflow["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"
    assert (mlflow["type"], mlflow["exp_name"], mlflow["run_name"], mlflow["params"]) == (
        "StatusMLflowVisBackend", "exp", "run-1", PARAMS)
    assert wandb["type"] == "WandbVisBackend"
    assert wandb["init_kwargs"] == dict(project="proj", name="run-1", mode="offline", dir=str(tmp_path / "wb"),
                                        config={"yolor_ray": PARAMS}, reinit="finish_previous")
    assert "never-passed-on" not in repr([mlflow, wandb])


def test_mlflow_without_a_tracking_uri():
    with pytest.raises(TrackerError, match="--tracker mlflow needs MLFLOW_TRACKING_URI"):
        tracker_backends(("mlflow",), "run", PARAMS, tracker_settings({}))


def test_a_missing_tracker_package_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(TrackerError, match=r"--tracker wandb needs the wandb package, which is not installed: "
                                           r"pip install 'yolor-ray\[trackers\]'"):
        check_trackers(("mlflow", "wandb"))


@pytest.mark.subprocess
def test_cli_refuses_mlflow_without_its_uri_before_ray(shapes_dir, tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--tracker", "mlflow",
                     "--storage", tmp_path / "results", env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("yolor-ray: error: --tracker mlflow needs MLFLOW_TRACKING_URI"), last
    assert not (tmp_path / "results").exists()


@pytest.mark.subprocess  # W&B's service (wandb-core)
def test_a_run_that_fails_ends_its_tracker_runs_as_failed(tmp_path, monkeypatch):
    """Real MLflow (SQLite store) and W&B (offline) backends in a real Visualizer: closed
    after a failure, the MLflow run is FAILED and the W&B run exits with 1, with what they
    logged, not MMEngine's FINISHED and exit code 0."""
    import mlflow

    from yolor_ray.train.trackers import close_unfinished

    from support.wandb_records import offline_run

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root, ./mlruns
    visualizer = _visualizer(tmp_path, ("mlflow", "wandb"), "failing-run",
                             dict(MLFLOW_TRACKING_URI="sqlite:///mlflow.db", WANDB_MODE="offline",
                                  WANDB_DIR=str(tmp_path / "wandb")))
    visualizer.add_scalars({"loss": 1.5}, step=1)
    close_unfinished(visualizer, stopped=False)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("yolor-ray").experiment_id])
    assert run.info.run_name == "failing-run" and run.info.status == "FAILED"
    assert run.data.metrics["loss"] == 1.5
    (run_file,) = (tmp_path / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    wandb_run = offline_run(run_file)
    assert wandb_run["name"] == "failing-run" and wandb_run["exit_code"] == 1
    assert [row["loss"] for row in wandb_run["history"] if "loss" in row] == [1.5]


@pytest.mark.parametrize("stopped, status", [(True, "KILLED"), (False, "FAILED")])
def test_an_unfinished_run_is_never_finished_even_for_a_moment(tmp_path, monkeypatch, stopped, status):
    """Tune may end a stopped trial's process anywhere in its close, so the one write that
    ends the MLflow run writes its status: MMEngine's close ends it KILLED (or FAILED), never
    FINISHED first, and still logs the log folder's artifacts. Every status MLflow writes is
    recorded. Real MLflow (SQLite store) in a real Visualizer."""
    import mlflow

    from yolor_ray.train.trackers import close_unfinished

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root, ./mlruns
    visualizer = _visualizer(tmp_path, ("mlflow",), "early-run", dict(MLFLOW_TRACKING_URI="sqlite:///mlflow.db"))
    (tmp_path / "work" / "run.log").write_text("epoch 1\n")
    visualizer.add_scalars({"loss": 1.5}, step=1)
    run_id = mlflow.active_run().info.run_id
    written = []
    real_set_terminated = mlflow.MlflowClient.set_terminated

    def set_terminated(client, run, status=None, *args, **kwargs):
        written.append(status)
        return real_set_terminated(client, run, status, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "set_terminated", set_terminated)
    close_unfinished(visualizer, stopped=stopped)
    assert written == [status] and mlflow.active_run() is None
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(run_id)
    assert run.info.status == status and run.data.metrics["loss"] == 1.5
    assert "run.log" in [a.path for a in client.list_artifacts(run_id)]  # MMEngine's close logged it


def test_a_finished_run_ends_as_mmengine_ends_it(tmp_path, monkeypatch):
    """Our backend changes nothing for a run that trained all its epochs: FINISHED."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    visualizer = _visualizer(tmp_path, ("mlflow",), "whole-run", dict(MLFLOW_TRACKING_URI="sqlite:///mlflow.db"))
    run_id = mlflow.active_run().info.run_id
    visualizer.close()  # as MMEngine's after_run does
    assert mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id).info.status == "FINISHED"
