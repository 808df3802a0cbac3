"""A run's config, made from its spec in three steps: what it needs from outside is looked up
first (:func:`look_up_inputs`: the dataset folder, a warm start's checkpoint), then its file is
adapted in one pass without I/O (:func:`run_config`), then its model is built on the driver
(:func:`config_and_model`), which completes the config.

Every run (``train``, a sweep's trial, a confirmation's or a reproduction's run) takes this
road, through :func:`yolor_ray.train.prepare.prepare_config`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config

from yolor_ray.config import edits
from yolor_ray.config.load import ConfigError, apply_cfg_options, load_config
from yolor_ray.data.coco import CocoFolder, inspect_coco_folder
from yolor_ray.errors import UserError
from yolor_ray.models import build_model as build_in_scope
from yolor_ray.train.quiet import quiet_mmengine
from yolor_ray.train.spec import TrainSpec
from yolor_ray.train.warm_start import baseline_checkpoint


@dataclass(frozen=True)
class RunInputs:
    """What a run's config takes from outside its file, looked up before it is adapted."""

    data: CocoFolder | None = None  # the --data folder, inspected (None: the config's own dataset)
    from_baseline: str | None = None  # the warm start's BASELINE ...
    baseline_checkpoint: str | None = None  # ... and the checkpoint file it names


def look_up_inputs(spec: TrainSpec, known: RunInputs | None = None) -> RunInputs:
    """The dataset folder inspected and a warm start's checkpoint found; what ``known`` already
    holds for these settings is reused (a sweep parses its annotation files once, not per trial)."""
    known = known or RunInputs()
    data = None
    if spec.data_root is not None:
        data = known.data
        if data is None or data.root != spec.data_root.resolve():
            data = inspect_coco_folder(spec.data_root, spec.check_all_images)
    start = spec.warm_start
    if start is None:
        return RunInputs(data)
    checkpoint = known.baseline_checkpoint if known.from_baseline == start.from_baseline else None
    return RunInputs(data, start.from_baseline,
                     checkpoint or baseline_checkpoint(start.from_baseline, spec.storage.endpoint))


def run_config(spec: TrainSpec, inputs: RunInputs) -> Config:
    """What a run trains, in one pass from its config file: the implicit variant, the dataset,
    the small scale, epochs and batch, seed, precision, YOLOR's optimizer recipe, our data and
    logging parts, the batch recipe, a warm start's weights and schedule, the user's
    ``--cfg-options`` (last: they win) and ``--load-from``. No I/O but reading the file: the
    values were checked with the spec, the inputs looked up before."""
    cfg = load_config(spec.config)
    if spec.implicit is not None:
        edits.set_implicit(cfg, spec.implicit)
    if inputs.data is not None:
        edits.use_coco_folder(cfg, inputs.data.train, inputs.data.val)
    if spec.small:
        edits.make_small(cfg, spec.image_size)
    if spec.epochs is not None:
        edits.set_epochs(cfg, spec.epochs)
    if spec.batch_size is not None:
        edits.set_batch_size(cfg, spec.batch_size)
    cfg.randomness = dict(seed=spec.seed, deterministic=spec.deterministic)
    if spec.amp is not None:
        edits.set_amp(cfg, spec.amp)
    edits.use_implicit_recipe(cfg)
    edits.skip_unreadable_images(cfg)
    edits.use_tensorboard(cfg)
    edits.use_classwise_ap(cfg)
    edits.use_project_coco_metric(cfg, spec.coco_eval)
    edits.use_batch_recipe(cfg, spec.scaling.cpus_per_worker)
    if spec.scaling.use_gpu:
        edits.use_cudnn_autotuner_where_shapes_are_fixed(cfg)
    start = spec.warm_start
    if start is not None:
        cfg.load_from = inputs.baseline_checkpoint
        edits.use_finetune_schedule(cfg, start.finetune_lr_factor)
        if start.train_params == "implicit":
            edits.train_implicit_only(cfg)
    apply_cfg_options(cfg, spec.cfg_options)  # last: the user's own options win
    if spec.load_from is not None:
        cfg.load_from = spec.load_from
    if isinstance(cfg.get("load_from"), str) and cfg.load_from and "://" not in cfg.load_from:
        cfg.load_from = str(Path(cfg.load_from).expanduser().resolve())  # Ray moves workers' cwd
    return cfg


def config_and_model(spec: TrainSpec, inputs: RunInputs) -> tuple[Config, torch.nn.Module]:
    """The run's config (:func:`run_config`) and its model, built from it on the driver. Building
    completes the config: mmdet's detectors hand their train/test settings down into their
    heads' dicts, which config.py and the run's fingerprint hold."""
    cfg = run_config(spec, inputs)
    return cfg, build_model(cfg)


# What a bad key or value in a config part raises while MMEngine's registry builds it (the
# registry keeps the exception's type): TypeError for an unknown argument, KeyError for an
# unknown type, ValueError and AssertionError for a value a class checks, FileNotFoundError for a
# file it names. Reported as the user's mistake in one line, the cause kept; any other exception
# is a bug and keeps its traceback.
BAD_CONFIG_ERRORS = (KeyError, TypeError, ValueError, AssertionError, FileNotFoundError)


def does_not_build(key: str, err: Exception) -> ConfigError:
    return ConfigError(f"{key} does not build: {type(err).__name__}: {err}")


def build_model(cfg: Config):
    """Build the model once on the driver: catches bad model keys before Ray starts."""
    try:
        with quiet_mmengine():
            return build_in_scope(cfg.model, cfg.get("default_scope", "mmdet"))
    except UserError:
        raise
    except BAD_CONFIG_ERRORS as err:
        raise does_not_build("model config", err) from err
