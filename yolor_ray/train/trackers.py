"""Experiment trackers beside TensorBoard (``--tracker mlflow|wandb``): MMEngine's
MLflowVisBackend (as ``engine.mlflow_run.StatusMLflowVisBackend``, whose run can end KILLED or
FAILED) and WandbVisBackend, configured on the driver from the trackers' standard
environment variables and passed to rank 0's visualizer explicitly.

MLflow: ``MLFLOW_TRACKING_URI`` (required: MMEngine's backend would default to a ``file://``
store, which MLflow 3.13+ refuses) and ``MLFLOW_EXPERIMENT_NAME`` (default ``yolor-ray``).
W&B: ``WANDB_PROJECT`` (default ``yolor-ray``), ``WANDB_MODE`` (``offline``: run files only),
``WANDB_DIR`` (default: the run's log folder, so offline runs land in storage with the logs);
``WANDB_API_KEY`` is read by wandb itself in the worker, never by us, never logged.
Every tracker run is named after the run (a sweep's trial id) and gets the run's variant
as parameters (:func:`tracker_params`).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Mapping

from yolor_ray.engine.mlflow_run import FAILED, KILLED, StatusMLflowVisBackend
from yolor_ray.errors import UserError

PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}
MLFLOW_BACKEND = StatusMLflowVisBackend.__name__  # registered under its class name (yolor_ray.registrations)
DEFAULT_PROJECT = "yolor-ray"
WANDB_PARAMS_KEY = "yolor_ray"  # W&B's config: our parameters under this key, MMEngine's config beside it
# Config keys MLflow records as parameters beside ours (the whole config would be
# hundreds of parameters, some longer than MLflow's limit).
MLFLOW_CONFIG_KEYS = ["train_cfg", "auto_scale_lr", "randomness"]


class TrackerError(UserError, ValueError):
    """A tracker asked for that cannot work: its package missing, its settings absent."""


def tracker_params(implicit: dict | None, lr, model: str, config: str, num_workers: int, epochs: int,
                   batch_size: int) -> dict[str, str]:
    """What a run is, as flat string parameters: the detector, scale and, for YOLOR, every
    implicit setting (a sweep's variant: placements, modeling, init, LR)."""
    params = dict(config=config, model=model, yolor=str(implicit is not None), num_workers=num_workers,
                  epochs=epochs, batch_size=batch_size, lr=lr)
    for key, value in (implicit or {}).items():
        params[f"implicit.{key}"] = "+".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return {key: str(value) for key, value in params.items()}


def check_trackers(trackers: tuple[str, ...]) -> None:
    """Each tracker's package is installed: a one-line error before any cluster time."""
    for tracker in trackers:
        if importlib.util.find_spec(PACKAGES[tracker]) is None:
            raise TrackerError(f"--tracker {tracker} needs the {PACKAGES[tracker]} package, which is not installed: "
                               f"pip install 'yolor-ray[trackers]' (or pip install {PACKAGES[tracker]})")


# What we read of the trackers' environment (never their credentials: wandb reads
# WANDB_API_KEY itself in the worker, MLflow its MLFLOW_TRACKING_TOKEN / _PASSWORD).
SETTINGS = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT", "WANDB_MODE", "WANDB_DIR")


def tracker_settings(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The trackers' settings of the driver's environment, paths made absolute: taken along
    to where runs start (a sweep's trials), whose working directory and environment differ."""
    settings = {key: env[key] for key in SETTINGS if env.get(key)}
    if "MLFLOW_TRACKING_URI" in settings:
        settings["MLFLOW_TRACKING_URI"] = mlflow_tracking_uri(settings)
    if "WANDB_DIR" in settings:
        settings["WANDB_DIR"] = str(Path(settings["WANDB_DIR"]).expanduser().resolve())
    return settings


def tracker_backends(trackers: tuple[str, ...], run_name: str, params: dict[str, str],
                     env: Mapping[str, str]) -> list[dict]:
    """MMEngine vis backend configs of ``trackers`` for run ``run_name``, from ``env``
    (:func:`tracker_settings`)."""
    check_trackers(trackers)
    backends = []
    for tracker in trackers:
        if tracker == "mlflow":
            backends.append(dict(type=MLFLOW_BACKEND, tracking_uri=mlflow_tracking_uri(env),
                                 exp_name=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT, run_name=run_name,
                                 params=params, tracked_config_keys=MLFLOW_CONFIG_KEYS))
        elif tracker == "wandb":
            # Under one key: MMEngine adds the whole config beside it, whose keys (model, ...) W&B
            # refuses to change.
            init = dict(project=env.get("WANDB_PROJECT") or DEFAULT_PROJECT, name=run_name,
                        config={WANDB_PARAMS_KEY: params}, reinit="finish_previous")
            if env.get("WANDB_MODE"):
                init["mode"] = env["WANDB_MODE"]
            if env.get("WANDB_DIR"):
                init["dir"] = str(Path(env["WANDB_DIR"]).expanduser().resolve())  # workers run elsewhere
            backends.append(dict(type="WandbVisBackend", init_kwargs=init))
    return backends


def mlflow_tracking_uri(env: Mapping[str, str]) -> str:
    """``MLFLOW_TRACKING_URI``, a relative ``sqlite:///`` path made absolute (Ray moves the
    workers' working directory)."""
    uri = env.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise TrackerError("--tracker mlflow needs MLFLOW_TRACKING_URI, e.g. sqlite:///mlflow.db or "
                           "http://mlflow-host:5000")
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def prepare_mlflow_experiment(uri: str, experiment: str) -> None:
    """The store answers and the experiment exists before training: concurrent trials
    would otherwise race to create it (MMEngine's backend creates a missing one)."""
    import mlflow  # deferred: optional (check_trackers)

    client = mlflow.MlflowClient(tracking_uri=uri)
    try:
        if client.get_experiment_by_name(experiment) is None:
            client.create_experiment(experiment)
    except Exception as err:
        raise TrackerError(f"MLflow at {uri!r} cannot be used: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}") from None


def close_unfinished(visualizer, stopped: bool) -> None:
    """Closes the visualizer of a run that ends early (MMEngine's after_run never comes):
    TensorBoard flushed, tracker runs ended, an MLflow run ended KILLED (``stopped``: the
    sweep's scheduler stopped the trial) or FAILED instead of MMEngine's FINISHED, and a
    failed run's W&B run ended with exit code 1 (W&B's "failed"; a stopped one "finished")."""
    mlflow_backend = visualizer.get_backend(MLFLOW_BACKEND)
    if mlflow_backend is not None:
        mlflow_backend.end_status = KILLED if stopped else FAILED
    if not stopped and visualizer.get_backend("WandbVisBackend") is not None:
        import wandb  # deferred: optional, and imported by the backend already

        if wandb.run is not None:
            wandb.run.finish(exit_code=1)  # the backend's close() then finds no run to end
    visualizer.close()
