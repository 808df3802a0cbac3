"""Arms x seeds planned as training runs, before any trains: one run per arm and seed, named
``LABEL-seedN`` in one runs folder (a sweep's ``confirm/``, a reproduction's ``runs/``), and
what each is now: done, unfinished (it continues from its latest whole checkpoint) or new.
Each arm's config is prepared and checked once, before any run trains, by the entry point every
run takes (``train.prepare.prepare_config``). A second stage (seeds on demand, ``.stages``)
plans more seeds of some arms in the same folder, its arms' configs as prepared
(:func:`extend_plan`).

An arm is a label and the run settings every seed of it shares. A run takes its arm's
settings with its own name, seed and the sampler's seed: the arms of one seed see the same
images in the same order, so their difference at that seed is paired.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Callable

from yolor_ray.data.coco import CocoFolder
from yolor_ray.layout import RESULTS_FILE, RUN_FILE
from yolor_ray.names import NameTakenError
from yolor_ray.paired.checkpoints import stored_checkpoints
from yolor_ray.records import RunManifest
from yolor_ray.storage import Storage, StorageSpec, open_storage
from yolor_ray.train.prepare import PreparedConfig, fingerprint_of, prepare_config
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec

# The sampler's own seed (MMEngine's DefaultSampler): the data order follows the run's seed
# alone, whatever else of the model draws random numbers first.
SAMPLER_SEED = "train_dataloader.sampler.seed"
DONE, UNFINISHED, NEW = "done", "unfinished", "new"


@dataclass(frozen=True)
class Arm:
    label: str  # 'baseline', a variant's label, 'atss-yolor' ...
    spec: TrainSpec  # what every seed of the arm trains (name, seed and storage are the run's)


@dataclass(frozen=True)
class PlannedRun:
    arm: str
    seed: int
    spec: TrainSpec  # its name is the run's name, its storage the runs folder
    state: str  # DONE (results.json), UNFINISHED (started: run.json) or NEW
    checkpointed: bool = False  # unfinished with a whole checkpoint in storage: it continues from there

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class PairedPlan:
    """Every run of arms x seeds (or of a second stage: some arms at more seeds), under
    ``storage/name/runs_dir``; nothing written."""

    runs: tuple[PlannedRun, ...]
    seeds: tuple[int, ...]  # every arm's in the first stage (each arm's config prepared at the first)
    storage: Storage  # the parent of the sweep or reproduction
    name: str  # the sweep's or reproduction's name
    runs_dir: str
    in_actor: bool  # 1-worker runs train in their Tune actors (else each a TorchTrainer run)
    inputs: RunInputs | None = None  # --data inspected, --from's checkpoint found: once for every run
    # arm label -> its config at the first seed, prepared and checked in full
    configs: dict[str, PreparedConfig] = field(default_factory=dict)
    arms: tuple[Arm, ...] = ()
    kind: str = "comparison"  # what the runs are of, for messages: 'confirmation', 'reproduction'

    @property
    def data(self) -> CocoFolder | None:
        return self.inputs.data if self.inputs is not None else None

    @property
    def runs_uri(self) -> str:
        return self.storage.location(self.name, self.runs_dir)

    @property
    def pending(self) -> tuple[PlannedRun, ...]:
        return tuple(run for run in self.runs if run.state != DONE)

    @property
    def first_spec(self) -> TrainSpec:
        """The settings the arms share (workers, failures, storage endpoint) as the first run has them."""
        return self.runs[0].spec


def run_name(label: str, seed: int) -> str:
    """The run of one arm at one seed: 'fpn-pred_vector-seed1', 'atss-yolor-seed0' (a valid run name)."""
    return f"{re.sub(r'[^A-Za-z0-9.-]+', '_', label.replace('+', '-')).strip('_')[:100]}-seed{seed}"


def run_spec(arm: Arm, seed: int, runs_uri: str) -> TrainSpec:
    """One run's settings: its arm's, with its name, its seed (the sampler's too) and the runs folder."""
    return dataclasses.replace(arm.spec, name=run_name(arm.label, seed), seed=seed,
                               storage=dataclasses.replace(arm.spec.storage, uri=runs_uri),
                               cfg_options={**arm.spec.cfg_options, SAMPLER_SEED: seed})


def run_state(runs: Storage, spec: TrainSpec, fingerprint: Callable[[], str], kind: str) -> str:
    """DONE, UNFINISHED or NEW; a run folder of other settings is an error (its run.json's
    fingerprint, as ``train`` compares it on resume; ``fingerprint()``: this run's)."""
    text = runs.read_text(spec.name, RUN_FILE)
    if text is None:
        return NEW  # nothing, or only the folder Tune made for it
    if RunManifest.from_json(text).fingerprint != fingerprint():
        raise NameTakenError(f"run {runs.location(spec.name)!r} was trained with other settings than this {kind}'s; "
                             "rerun with the options it started with, or pick another --name")
    return DONE if runs.read_text(spec.name, RESULTS_FILE) is not None else UNFINISHED


def plan_paired(arms: list[Arm], seeds: list[int], storage: Storage, name: str, runs_dir: str, *, in_actor: bool,
                inputs: RunInputs | None = None, kind: str = "comparison") -> PairedPlan:
    """Every arm at every seed, with its state in ``storage/name/runs_dir`` (``kind``: what the
    runs are of, for messages: 'confirmation', 'reproduction'); each arm's config prepared at the
    first seed (a bad option fails here, in one line, before any stored run is compared)."""
    runs_uri = storage.location(name, runs_dir)
    configs = {}
    for arm in arms:
        configs[arm.label] = prepare_config(run_spec(arm, seeds[0], runs_uri), inputs)
        inputs = configs[arm.label].inputs
    prepared = PairedPlan((), tuple(seeds), storage, name, runs_dir, in_actor, inputs, configs, tuple(arms), kind)
    return extend_plan(prepared, {arm.label: list(seeds) for arm in arms})


def extend_plan(plan: PairedPlan, seeds: dict[str, list[int]]) -> PairedPlan:
    """The runs of each arm (by label) at ``seeds[label]``, with their states, as ``plan``'s arms
    and configs have them: a second stage beside ``plan`` (its runs only)."""
    runs_storage = open_storage(StorageSpec(plan.runs_uri, plan.arms[0].spec.storage.endpoint))

    def fingerprint(label: str, spec: TrainSpec) -> str:  # the first seed's is known already
        return plan.configs[label].fingerprint if spec.seed == plan.seeds[0] else fingerprint_of(spec, plan.inputs)

    runs = []
    for arm in plan.arms:
        for seed in seeds.get(arm.label, ()):
            spec = run_spec(arm, seed, plan.runs_uri)
            state = run_state(runs_storage, spec, functools.partial(fingerprint, arm.label, spec), plan.kind)
            checkpointed = state == UNFINISHED and bool(stored_checkpoints(runs_storage, spec.name)[0])
            runs.append(PlannedRun(arm.label, seed, spec, state, checkpointed))
    return dataclasses.replace(plan, runs=tuple(runs))
