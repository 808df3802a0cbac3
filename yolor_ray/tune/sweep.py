"""The driver of a Ray Tune sweep over implicit variants (each trial a training run): prepare
it, size it to the cluster, run its trials, confirm its winners, write its results.

``prepare_sweep`` settles everything before Ray starts (:mod:`yolor_ray.tune.checks`);
``run_sweep`` then runs a ``Tuner`` (:mod:`yolor_ray.tune.tuner`) over a function trainable
(:func:`yolor_ray.tune.trial.sweep_trial`). A 1-worker trial trains in its own actor and
reports each epoch (and its checkpoint) to Tune; a trial of more workers builds its own
``TorchTrainer`` through :func:`yolor_ray.train.driver.run_training`, with Tune's report
callback, holding one CPU itself while its trainer holds the workers. Either way every
epoch's metrics reach Tune and its ASHA scheduler. When Tune is done, the driver writes
the results of the trials ASHA stopped (:mod:`yolor_ray.tune.stopped`), then the
leaderboard. ``--dry-run`` prints a prepared sweep (:mod:`yolor_ray.tune.describe`).

Layout in storage, for a sweep ``NAME``::

    STORAGE/NAME/               Tune's experiment of TorchTrainer trials (their Tune folders, state)
    STORAGE/NAME/sweep.json     what the name belongs to: config, space, settings
    STORAGE/NAME/runs/          Tune's experiment of in-process trials (each Tune folder = its run)
    STORAGE/NAME/runs/TRIAL/    each trial's training run, results.json included
    STORAGE/NAME/leaderboard.{json,md}, trials.png, best_config.py

Resume: the same command with the same ``--name`` restores the Tune experiment;
unfinished trials restart and their training runs continue from their last
checkpoint (a trial's run name is its trial id, which a restored sweep keeps). A
complete sweep run again with ``--confirm K`` trains only its confirmation.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from yolor_ray.implicit import available_placements, split_yolor_cfg
from yolor_ray.layout import LEADERBOARD_FILE, RUNS_DIR, SWEEP_FILE
from yolor_ray.names import complete, default_name, held_manifest, started_otherwise
from yolor_ray.paired.capacity import trials_at_a_time
from yolor_ray.paired.faults import fit_ending_on_storage_faults
from yolor_ray.paired.progress import tune_output
from yolor_ray.records import Leaderboard, SweepManifest
from yolor_ray.storage import open_storage
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.prepare import prepare_config
from yolor_ray.train.ray_cluster import ray_session
from yolor_ray.train.run_config import config_and_model, look_up_inputs
from yolor_ray.tune.checks import check_against_config, check_reports, pick_search, sweep_fingerprint, trials_of
from yolor_ray.tune.confirm import check_confirmable, run_confirmation
from yolor_ray.tune.leaderboard import ranked_entries, write_sweep_results
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.space_parse import parse_space
from yolor_ray.tune.spec import SweepSpec
from yolor_ray.tune.stopped import record_stopped_trial
from yolor_ray.tune.trial import trial_for
from yolor_ray.tune.tuner import sweep_tuner

log = logging.getLogger("yolor_ray")


def prepare_sweep(spec: SweepSpec) -> PreparedSweep:
    """Every check that can fail before Ray starts, without writing anything: the config as a
    trial trains it (what it reports, the placements its detector has), the space, the search,
    one trial's run prepared in full, the name."""
    train = spec.train
    search = pick_search(spec.search)
    storage = open_storage(train.storage)
    name = spec.name or default_name(f"sweep-{spec.config.stem}")
    warm = train.warm_start
    trial_spec = dataclasses.replace(
        train, num_samples=0,  # sample images: per run, not per trial
        data_root=train.data_root.resolve() if train.data_root else None,
        warm_start=dataclasses.replace(warm, from_baseline=_absolute(warm.from_baseline)) if warm else None,
        storage=dataclasses.replace(train.storage, uri=storage.location(name, RUNS_DIR)),
        checkpoints=dataclasses.replace(train.checkpoints, metric=spec.metric, mode=spec.mode),
    ).for_run(spec.config.resolve())
    # The annotation files are parsed and --from's checkpoint found here once; trials reuse them.
    inputs = look_up_inputs(trial_spec)
    cfg, model = config_and_model(trial_spec, inputs)
    check_reports(cfg, spec)
    base_implicit = split_yolor_cfg(cfg.model)[1] or {}
    space = parse_space(spec.space, tuple(available_placements(model)))
    del model  # before the trial's model is built
    check_against_config(space, base_implicit)
    space.to_tune(grid=search == "grid")  # a grid over a range fails here, before Ray
    storage.check()
    # One trial's config, checked in full (data, the YOLOR model builds, its optimizer, load_from).
    first = {d.key: d.values()[0] for d in space.dimensions}
    prepared = prepare_config(trial_for(trial_spec, first, base_implicit, "check"), inputs)
    fingerprint = sweep_fingerprint(prepared.config_text, prepared.fingerprint, space, search, spec)
    state = _check_sweep_name(storage, name, fingerprint, confirm=spec.confirm > 0)
    search, points = trials_of(space, search, spec.trials, train.seed)
    plan = PreparedSweep(spec, space, trial_spec, base_implicit, prepared.cfg.train_cfg.max_epochs, search, name,
                         storage, fingerprint, resuming=state == "unfinished", inputs=inputs,
                         finished=state == "finished", points=points)
    check_confirmable(plan)
    return plan


def _absolute(uri: str | None) -> str | None:
    """A local path made absolute: trials run in Tune's own working folders."""
    if uri is None or "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def _check_sweep_name(storage, name: str, fingerprint: str, confirm: bool = False) -> str:
    """'new'; 'unfinished': a sweep with these settings to resume; 'finished': a complete one
    with these settings whose winners ``confirm`` (--confirm) is to train again."""
    manifest = held_manifest(storage, name, "sweep", SweepManifest, SWEEP_FILE)
    if manifest is None:
        return "new"
    same = manifest.fingerprint == fingerprint
    if storage.read_text(name, LEADERBOARD_FILE) is not None:
        if confirm and same:
            return "finished"
        raise complete(storage, name, "sweep", LEADERBOARD_FILE,
                       ", or confirm its winners: the same command with --confirm K" if same else "")
    if not same:
        raise started_otherwise(storage, name, "sweep", "another config, space or settings",
                                "resume it with the same command, or pick another --name")
    return "unfinished"


def run_sweep(spec: SweepSpec):
    """Run (or resume) a sweep and write its leaderboard; returns the leaderboard. A
    complete sweep run again with --confirm only trains its confirmation."""
    plan = prepare_sweep(spec)
    with ray_session(plan.trial_spec.address, verbose=plan.trial_spec.verbose) as local:
        max_concurrent = _trials_at_a_time(plan, local)
        if plan.finished:
            entries = Leaderboard.from_json(plan.storage.read_text(plan.name, LEADERBOARD_FILE)).trials
            log.info("sweep %s is complete: confirming its top %d variant(s)", plan.location, spec.confirm)
        else:
            entries = _run_trials(plan, max_concurrent, local)
        confirmation = run_confirmation(plan, entries, max_concurrent, local) if spec.confirm else None
    return write_sweep_results(plan, entries, confirmation)


def _trials_at_a_time(plan: PreparedSweep, local: bool) -> int:
    return trials_at_a_time(plan.trial_spec, plan.in_actor, plan.spec.max_concurrent, plan.spec.fixed_cluster,
                            local)


def _run_trials(plan: PreparedSweep, max_concurrent: int, local: bool) -> list:
    """The sweep's trials through Tune; their leaderboard entries, ranked."""
    if plan.data is not None and not local:
        check_data_on_nodes(DataCheck.of(plan.data), plan.trial_spec.scaling.resources_per_worker())
    start = time.monotonic()
    with tune_output(plan.trial_spec.verbose):
        grid = fit_ending_on_storage_faults(sweep_tuner(plan, max_concurrent))  # a trial's storage fault ends it
    log.info("sweep finished in %.0f s", time.monotonic() - start)
    runs = open_storage(plan.trial_spec.storage)
    for result in grid:
        record_stopped_trial(runs, result)
    return ranked_entries(plan, grid)

