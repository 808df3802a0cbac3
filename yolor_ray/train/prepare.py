"""The one entry point that prepares a run on the driver before Ray starts, for ``train``, a
sweep's trial, a confirmation's and a reproduction's run alike. Nothing is written:
``train.driver`` launches what this module prepared.

:func:`prepare_config` makes and checks the run's config (``train.run_config``: inputs looked
up, the file adapted in one pass, the model built; then ``train.checks``); :func:`prepare_run`
adds where the run lands: its storage, its name (new, or an unfinished run to resume) and its
trackers.

``run.json``, written before training, ties a run name to its config and scale, so a name
cannot be resumed with another (:func:`run_fingerprint`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from mmengine.config import Config

from yolor_ray.data.coco import CocoFolder
from yolor_ray.implicit import split_yolor_cfg
from yolor_ray.layout import RESULTS_FILE, RUN_FILE
from yolor_ray.names import NameTakenError, complete, default_name, held_manifest, started_otherwise
from yolor_ray.records import RunManifest
from yolor_ray.storage import Storage, open_storage
from yolor_ray.train.checks import check_run_config
from yolor_ray.train.run_config import RunInputs, config_and_model, look_up_inputs
from yolor_ray.train.spec import TrainSpec
from yolor_ray.train.trackers import tracker_backends, tracker_params


@dataclass(frozen=True, kw_only=True)
class PreparedConfig:
    """A run's config, adapted and checked: what it trains, whatever its name. Nothing written."""

    spec: TrainSpec
    cfg: Config
    inputs: RunInputs
    classes: tuple[str, ...]
    num_params: int
    config_text: str  # cfg.pretty_text, formatted once: config.py's and the fingerprint's
    checks: dict[str, str] = field(default_factory=dict)  # what was found: data counts, load_from's keys

    @property
    def data(self) -> CocoFolder | None:
        """The checked --data folder (None: the config's own dataset)."""
        return self.inputs.data

    @property
    def fingerprint(self) -> str:
        return run_fingerprint(self.config_text, self.spec)


@dataclass(frozen=True, kw_only=True)
class PreparedRun(PreparedConfig):
    """A validated run: its config and where it will land. Nothing written yet."""

    name: str
    storage: Storage
    resuming: bool
    trackers: tuple = ()  # MMEngine vis backend configs of --tracker, for rank 0

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def manifest(self) -> RunManifest:
        """run.json: which config and scale the name belongs to, and what is known before training."""
        detector_cfg, implicit = split_yolor_cfg(self.cfg.model)
        return RunManifest(
            config=str(self.spec.config), fingerprint=self.fingerprint, num_workers=self.spec.scaling.num_workers,
            use_gpu=self.spec.scaling.use_gpu, model=detector_cfg["type"], implicit=implicit,
            data_root=str(self.spec.data_root) if self.spec.data_root else None, classes=list(self.classes),
            small=self.spec.small, epochs=self.cfg.train_cfg.max_epochs, num_params=self.num_params,
            warm_start=self.spec.warm_start.from_baseline if self.spec.warm_start else None)


def prepare_config(spec: TrainSpec, known: RunInputs | None = None) -> PreparedConfig:
    """The run's config made (its inputs looked up, its file adapted, its model built) and
    checked, without writing anything. ``known``: inputs already looked up for these settings
    (a sweep parses its annotation files once, not once per trial)."""
    inputs = look_up_inputs(spec, known)
    cfg, model = config_and_model(spec, inputs)
    checks = check_run_config(spec, cfg, model, inputs)
    classes = inputs.data.train.classes if inputs.data is not None \
        else tuple(cfg.get("metainfo", {}).get("classes", ()))
    return PreparedConfig(spec=spec, cfg=cfg, inputs=inputs, classes=classes,
                          num_params=sum(p.numel() for p in model.parameters()), config_text=cfg.pretty_text,
                          checks=checks)


def prepare_run(spec: TrainSpec, known: RunInputs | None = None, folder_made: bool = False) -> PreparedRun:
    """Every check that can fail before Ray starts, without writing anything: the config
    (:func:`prepare_config`), the storage, the run's name (``spec.name``, or a dated default)
    and its trackers. ``folder_made``: the run's folder may exist without run.json (Tune made
    it: an in-process trial's folder is Tune's trial folder)."""
    config = prepare_config(spec, known)
    storage = open_storage(spec.storage)
    storage.check()
    name = spec.name or default_name(spec.config.stem)
    resuming = _check_run_name(storage, name, config.fingerprint, spec, folder_made)
    trackers = run_trackers(spec, config.cfg, name)
    return PreparedRun(**{f: getattr(config, f) for f in PreparedConfig.__dataclass_fields__},
                       name=name, storage=storage, resuming=resuming, trackers=trackers)


def fingerprint_of(spec: TrainSpec, inputs: RunInputs) -> str:
    """The fingerprint a run of ``spec`` has in its run.json (:func:`run_fingerprint`), from its
    config and model alone (no other check): is a stored run of that name this one?"""
    cfg, _ = config_and_model(spec, inputs)
    return run_fingerprint(cfg.pretty_text, spec)


def run_trackers(spec: TrainSpec, cfg: Config, name: str) -> tuple:
    """--tracker's backends for run ``name`` (checked with the config: ``train.checks``)."""
    if not spec.trackers.names:
        return ()
    detector_cfg, implicit = split_yolor_cfg(cfg.model)
    params = tracker_params(implicit, cfg.optim_wrapper.optimizer.get("lr"), detector_cfg["type"], spec.config.name,
                            spec.scaling.num_workers, cfg.train_cfg.max_epochs, cfg.train_dataloader.batch_size)
    return tuple(tracker_backends(spec.trackers.names, name, params, spec.trackers.env))


def run_fingerprint(config_text: str, spec: TrainSpec) -> str:
    """The config's text plus what the config does not hold but training depends on:
    the world size (the LR scales with the total batch) and the device."""
    scale = dict(num_workers=spec.scaling.num_workers, use_gpu=spec.scaling.use_gpu)
    text = config_text + json.dumps(scale, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_run_name(storage, name: str, fingerprint: str, spec: TrainSpec, folder_made: bool = False) -> bool:
    """True when ``name`` is an unfinished run of this config (resume it)."""
    if not storage.exists(name) or (folder_made and not storage.exists(name, RUN_FILE)):
        return False
    if storage.read_text(name, RESULTS_FILE) is not None:
        raise complete(storage, name, "run", RESULTS_FILE)
    theirs = held_manifest(storage, name, "run", RunManifest, RUN_FILE)
    if theirs.fingerprint != fingerprint:
        changed = _scale_changes(theirs, spec)
        if changed:
            raise started_otherwise(storage, name, "run", " and ".join(changed),
                                    "resume it with the same options, or start a new run with another --name")
        raise NameTakenError(f"run {storage.location(name)!r} belongs to a different config ({theirs.config!r} "
                             "with other settings); resume it with the same config and options, or pick another --name")
    return True


def _scale_changes(theirs: RunManifest, spec: TrainSpec) -> list[str]:
    """'--num-workers 2 (now 1)', '--gpu (now without)': what differs from the run's run.json."""
    changed = []
    if theirs.num_workers is not None and theirs.num_workers != spec.scaling.num_workers:
        changed.append(f"--num-workers {theirs.num_workers} (now {spec.scaling.num_workers})")
    if theirs.use_gpu is not None and bool(theirs.use_gpu) != spec.scaling.use_gpu:
        changed.append("--gpu (now without)" if theirs.use_gpu else "CPU workers (now --gpu)")
    return changed
