"""A reproduction checked on the driver before Ray starts: every run's settings, which runs
are done, unfinished or new, and each row's arms prepared in full (config, data, model) by the
paired plan; nothing written (``launch`` writes and trains).

Each row's baseline and YOLOR configs are the two arms of a paired plan
(:mod:`yolor_ray.paired`), labelled ``ROW-ARM``: each run is a normal training run,
``STORAGE/NAME/runs/ROW-ARM-seedN`` (``layout``). The baseline and YOLOR run of one seed share
the seed, and the sampler's seed with it: both see the same images in the same order. Each row
is one comparison (YOLOR against its baseline); with ``--resolution`` the seeds are its pilot
(:mod:`yolor_ray.paired.stages`).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

from yolor_ray.data.coco import CocoFolder
from yolor_ray.layout import REPRODUCE_PLAN, RUNS_DIR
from yolor_ray.names import default_name, held_manifest, started_otherwise
from yolor_ray.paired.capacity import trains_in_actor
from yolor_ray.paired.plan import Arm, PairedPlan, PlannedRun, plan_paired
from yolor_ray.paired.stages import Comparison, FixedSeeds, seeding
from yolor_ray.records import ReproduceManifest
from yolor_ray.reference import REFERENCE_METRICS, baseline_config, yolor_config
from yolor_ray.reproduce.spec import ARMS, ReproduceSpec
from yolor_ray.storage import Storage, open_storage
from yolor_ray.train.prepare import PreparedConfig
from yolor_ray.train.spec import TrainSpec

log = logging.getLogger("yolor_ray")
# What a row is run to a resolution on (its largest N): box AP, and mask AP where it has masks.
PRIMARY_METRICS = ("coco/bbox_mAP", "coco/segm_mAP")


@dataclass(frozen=True)
class ReproducePlan:
    spec: ReproduceSpec
    name: str
    storage: Storage  # the reproduction's parent (--storage)
    paired: PairedPlan  # every row's two arms x the seeds, as runs, each arm's config prepared
    arms: dict[str, tuple[str, str]]  # arm label ('atss-yolor') -> (row, arm)
    manifest: ReproduceManifest
    resuming: bool
    comparisons: tuple[Comparison, ...]  # one per row
    seeding: FixedSeeds  # --seeds, or the pilot of --resolution

    @property
    def data(self) -> CocoFolder | None:
        return self.paired.data

    @property
    def prepared(self) -> dict[tuple[str, str], PreparedConfig]:
        """(row, arm) -> its config at the first seed, checked in full."""
        return {self.arms[label]: config for label, config in self.paired.configs.items()}

    @property
    def configs(self) -> dict[tuple[str, str], Config]:
        """(row, arm) -> the config its first seed trains."""
        return {key: config.cfg for key, config in self.prepared.items()}

    @property
    def location(self) -> str:
        return self.storage.location(self.name)

    @property
    def runs(self) -> tuple[PlannedRun, ...]:
        return self.paired.runs

    @property
    def pending(self) -> tuple[PlannedRun, ...]:
        return self.paired.pending

    @property
    def in_actor(self) -> bool:
        """1-worker runs train in their Tune actors, as a sweep's trials do."""
        return self.paired.in_actor


def arm_label(row: str, arm: str) -> str:
    """'atss-yolor': the arm's runs are 'atss-yolor-seedN'."""
    return f"{row}-{arm}"


def row_comparison(row: str) -> Comparison:
    """YOLOR against the baseline of ``row``, in % (the reference table's unit)."""
    primary = tuple(metric for metric in PRIMARY_METRICS if metric in REFERENCE_METRICS[row])
    return Comparison(arm_label(row, "yolor"), arm_label(row, "baseline"), primary, scale=100)


def seeds_of(spec: ReproduceSpec) -> FixedSeeds:
    """The rows' seeds: ``--seeds``, or its pilot of ``--resolution`` (H in AP points: the rows' values, in %)."""
    return seeding(spec.seed_list, spec.resolution, ap_points=1)


def arm_spec(spec: ReproduceSpec, row: str, arm: str) -> TrainSpec:
    """What every seed of a row's arm trains: the row's config for the arm, the YOLOR-only
    options on a YOLOR run, paths absolute (Tune's actors have working folders of their own)."""
    train = spec.train
    options = {**train.cfg_options, **(spec.yolor_options if arm == "yolor" else {})}
    config = baseline_config(row) if arm == "baseline" else yolor_config(row)
    return dataclasses.replace(
        train, cfg_options=options, data_root=train.data_root.resolve() if train.data_root else None,
        load_from=str(Path(train.load_from).expanduser().resolve())
        if train.load_from and "://" not in train.load_from else train.load_from,
    ).for_run(config)


def settings_of(spec: ReproduceSpec) -> dict:
    """What every run shares and a later pass of the same name must keep (its rows and seeds may
    grow; so may --max-seeds, which does not change N)."""
    train = spec.train
    return dict(data_root=str(train.data_root.resolve()) if train.data_root else None, small=train.small,
                image_size=train.image_size if train.small else None, epochs=train.epochs,
                batch_size=train.batch_size, num_workers=train.scaling.num_workers, use_gpu=train.scaling.use_gpu,
                amp=train.amp, deterministic=train.deterministic, load_from=train.load_from,
                cfg_options={k: repr(v) for k, v in sorted(train.cfg_options.items())},
                yolor_options={k: repr(v) for k, v in sorted(spec.yolor_options.items())},
                resolution=spec.resolution.target)


def prepare_reproduction(spec: ReproduceSpec) -> ReproducePlan:
    """Every check that can fail before Ray starts, without writing anything."""
    storage = open_storage(spec.train.storage)
    storage.check()
    name = spec.name or default_name("reproduce")
    settings = settings_of(spec)
    previous = _check_name(storage, name, settings)
    manifest = ReproduceManifest(rows=list(dict.fromkeys([*(previous.rows if previous else []), *spec.rows])),
                                 seeds=sorted({*(previous.seeds if previous else []), *spec.seed_list}),
                                 settings=settings)
    arms = {arm_label(row, arm): (row, arm) for row in spec.rows for arm in ARMS}
    paired = plan_paired([Arm(label, arm_spec(spec, row, arm)) for label, (row, arm) in arms.items()],
                         spec.seed_list, storage, name, RUNS_DIR,
                         in_actor=trains_in_actor(spec.train, spec.trainer_runs), kind="reproduction")
    return ReproducePlan(spec, name, storage, paired, arms, manifest, resuming=previous is not None,
                         comparisons=tuple(row_comparison(row) for row in spec.rows),
                         seeding=seeds_of(spec))


def _check_name(storage: Storage, name: str, settings: dict) -> ReproduceManifest | None:
    """The manifest of an earlier pass with these settings (None: a new reproduction)."""
    previous = held_manifest(storage, name, "reproduction", ReproduceManifest, REPRODUCE_PLAN)
    if previous is None:
        return None
    changed = [f"{key} {previous.settings.get(key)!r} (now {value!r})" for key, value in settings.items()
               if previous.settings.get(key) != value]
    if changed:
        raise started_otherwise(storage, name, "reproduction", "; ".join(changed),
                                "rerun it with the same options, or pick another --name")
    return previous
