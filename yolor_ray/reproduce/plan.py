"""A reproduction checked on the driver before Ray starts: every run's settings, which runs
are done, unfinished or new, and one run of each row and arm prepared in full (config, data,
model, storage); nothing written (``launch`` writes and trains).

Each run is a normal training run, ``STORAGE/NAME/runs/ROW-ARM-seedN`` (``layout``). The
baseline and YOLOR run of one seed share the seed, and the sampler's seed with it: both see
the same images in the same order.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mmengine.config import Config

from yolor_ray.data.coco import CocoFolder, inspect_coco_folder
from yolor_ray.errors import UserError
from yolor_ray.layout import REPRODUCE_PLAN, RESULTS_FILE, RUN_FILE, RUNS_DIR
from yolor_ray.records import RecordError, ReproduceManifest, RunManifest
from yolor_ray.reference import baseline_config, yolor_config
from yolor_ray.reproduce.spec import ARMS, ReproduceSpec
from yolor_ray.storage import Storage, StorageSpec, open_storage
from yolor_ray.train.prepare import PreparedRun, RunExistsError, fingerprint_of, prepare_run, run_config
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.trial import in_process, stored_checkpoints

log = logging.getLogger("yolor_ray")
# The sampler's own seed (MMEngine's DefaultSampler): the data order follows the run's seed
# alone, whatever else of the model draws random numbers first.
SAMPLER_SEED = "train_dataloader.sampler.seed"
DONE, UNFINISHED, NEW = "done", "unfinished", "new"


class ReproductionExistsError(UserError, FileExistsError):
    """A reproduction name that is taken by something else, or by other settings."""


@dataclass(frozen=True)
class PlannedRun:
    row: str
    arm: str  # 'baseline' or 'yolor'
    seed: int
    spec: TrainSpec  # its name is the run's name, its storage the reproduction's runs/ folder
    state: str  # DONE (results.json), UNFINISHED (started: run.json) or NEW
    checkpointed: bool = False  # unfinished with a checkpoint in storage: it continues from there

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ReproducePlan:
    spec: ReproduceSpec
    name: str
    storage: Storage  # the reproduction's parent (--storage)
    runs: tuple[PlannedRun, ...]
    configs: dict[tuple[str, str], Config]  # (row, arm) -> the config its first seed trains
    prepared: dict[tuple[str, str], PreparedRun]  # (row, arm) -> one of its runs to train, checked in full
    manifest: ReproduceManifest
    resuming: bool
    data: CocoFolder | None = None

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def runs_uri(self) -> str:
        return self.storage.location(self.name, RUNS_DIR)

    @property
    def pending(self) -> tuple[PlannedRun, ...]:
        return tuple(run for run in self.runs if run.state != DONE)

    @property
    def in_process(self) -> bool:
        """1-worker runs train in their Tune actors, as a sweep's trials do."""
        return in_process(self.spec.train, self.spec.trainer_runs)


def run_name(row: str, arm: str, seed: int) -> str:
    return f"{row}-{arm}-seed{seed}"


def run_spec(spec: ReproduceSpec, row: str, arm: str, seed: int, runs_uri: str) -> TrainSpec:
    """One run's settings: its row's config for the arm, its seed (the sampler's too), the
    YOLOR-only options on a YOLOR run, paths absolute (Tune's actors have working folders of their own)."""
    train = spec.train
    options = {**train.cfg_options, **(spec.yolor_options if arm == "yolor" else {}), SAMPLER_SEED: seed}
    return dataclasses.replace(
        train, seed=seed, cfg_options=options, storage=dataclasses.replace(train.storage, uri=runs_uri),
        data_root=train.data_root.resolve() if train.data_root else None,
        load_from=str(Path(train.load_from).expanduser().resolve())
        if train.load_from and "://" not in train.load_from else train.load_from,
    ).for_run(baseline_config(row) if arm == "baseline" else yolor_config(row), run_name(row, arm, seed))


def settings_of(spec: ReproduceSpec) -> dict:
    """What every run shares and a later pass of the same name must keep (its rows and seeds may grow)."""
    train = spec.train
    return dict(data_root=str(train.data_root.resolve()) if train.data_root else None, small=train.small,
                image_size=train.image_size if train.small else None, epochs=train.epochs,
                batch_size=train.batch_size, num_workers=train.scaling.num_workers, use_gpu=train.scaling.use_gpu,
                amp=train.amp, deterministic=train.deterministic, load_from=train.load_from,
                cfg_options={k: repr(v) for k, v in sorted(train.cfg_options.items())},
                yolor_options={k: repr(v) for k, v in sorted(spec.yolor_options.items())})


def prepare_reproduction(spec: ReproduceSpec) -> ReproducePlan:
    """Every check that can fail before Ray starts, without writing anything."""
    storage = open_storage(spec.train.storage)
    storage.check()
    name = spec.name or f"reproduce-{datetime.now():%Y%m%d-%H%M%S}"
    settings = settings_of(spec)
    previous = _check_name(storage, name, settings)
    manifest = ReproduceManifest(rows=list(dict.fromkeys([*(previous.rows if previous else []), *spec.rows])),
                                 seeds=sorted({*(previous.seeds if previous else []), *spec.seed_list}),
                                 settings=settings)
    data = inspect_coco_folder(spec.train.data_root, spec.train.check_all_images) if spec.train.data_root else None
    runs_uri = storage.location(name, RUNS_DIR)
    runs_storage = open_storage(StorageSpec(runs_uri, spec.train.storage.endpoint))
    runs, configs, prepared = [], {}, {}
    for row in spec.rows:
        for arm in ARMS:
            for seed in spec.seed_list:
                train = run_spec(spec, row, arm, seed, runs_uri)
                if (row, arm) not in configs:
                    configs[row, arm] = run_config(train, data)  # a bad option fails here, in one line
                state = _run_state(runs_storage, train, data)
                checkpointed = state == UNFINISHED and bool(stored_checkpoints(runs_storage, train.name)[0])
                run = PlannedRun(row, arm, seed, train, state, checkpointed)
                if run.state != DONE and (row, arm) not in prepared:
                    prepared[row, arm] = prepare_run(train, data, folder_made=True)
                runs.append(run)
    return ReproducePlan(spec, name, storage, tuple(runs), configs, prepared, manifest,
                         resuming=previous is not None, data=data)


def _check_name(storage: Storage, name: str, settings: dict) -> ReproduceManifest | None:
    """The manifest of an earlier pass with these settings (None: a new reproduction)."""
    if not storage.exists(name):
        return None
    try:
        previous = ReproduceManifest.from_stored(storage.read_text(name, REPRODUCE_PLAN), REPRODUCE_PLAN)
    except RecordError as err:
        raise ReproductionExistsError(f"{storage.location(name)!r} exists but is not a reproduction ({err}); "
                                      "pick another --name") from None
    changed = [f"{key} {previous.settings.get(key)!r} (now {value!r})" for key, value in settings.items()
               if previous.settings.get(key) != value]
    if changed:
        raise ReproductionExistsError(f"reproduction {storage.location(name)!r} was started with "
                                      f"{'; '.join(changed)}: rerun it with the same options, or pick another --name")
    return previous


def _run_state(runs: Storage, spec: TrainSpec, data: CocoFolder | None) -> str:
    """DONE, UNFINISHED or NEW; a run folder of other settings is an error (its run.json's
    fingerprint, as ``train`` compares it on resume)."""
    text = runs.read_text(spec.name, RUN_FILE)
    if text is None:
        return NEW  # nothing, or only the folder Tune made for it
    if RunManifest.from_json(text).fingerprint != fingerprint_of(spec, data):
        raise RunExistsError(f"run {runs.location(spec.name)!r} was trained with other settings than this "
                             "reproduction's; rerun with the options it started with, or pick another --name")
    return DONE if runs.read_text(spec.name, RESULTS_FILE) is not None else UNFINISHED
