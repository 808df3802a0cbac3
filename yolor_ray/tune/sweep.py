"""Ray Tune sweeps over implicit variants: each trial is a training run.

The driver (``run_sweep``) validates the config, the space and the metric, sizes the
sweep to the cluster, then runs a ``Tuner`` over a function trainable
(:func:`yolor_ray.tune.trial.sweep_trial`). A 1-worker trial trains in its own actor and
reports each epoch (and its checkpoint) to Tune; a trial of more workers builds its own
``TorchTrainer`` through :func:`yolor_ray.train.driver.run_training`, with Tune's report
callback, holding one CPU itself while its trainer holds the workers. Either way every
epoch's metrics reach Tune and its ASHA scheduler. When Tune is done, the driver writes
the results of the trials ASHA stopped (from their last checkpoint's run state), then the
leaderboard.

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
import hashlib
import importlib.util
import json
import logging
import time
from pathlib import Path, PurePosixPath

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator

from yolor_ray import config as cfglib
from yolor_ray.data.coco import inspect_coco_folder
from yolor_ray.implicit import available_placements, split_yolor_cfg
from yolor_ray.layout import LEADERBOARD_FILE, RESULTS_FILE, RUN_FILE, RUNS_DIR, SWEEP_FILE
from yolor_ray.metrics import TRAIN_LOSS, coco_keys
from yolor_ray.models import build_model
from yolor_ray.names import complete, default_name, held_manifest, started_otherwise
from yolor_ray.paired.capacity import actor_resources, describe_resources, trial_resources, trials_at_a_time
from yolor_ray.paired.trial import trial_folder
from yolor_ray.records import Leaderboard, RunManifest, SweepManifest
from yolor_ray.storage import StorageSpec, open_storage
from yolor_ray.train.checkpoints import latest_checkpoint
from yolor_ray.train.nodes import DataCheck, check_data_on_nodes
from yolor_ray.train.outputs import write_results
from yolor_ray.train.prepare import describe_run, prepare_run
from yolor_ray.train.ray_cluster import ray_session
from yolor_ray.train.spec import OptionError
from yolor_ray.tune import space as spacelib
from yolor_ray.tune.confirm import check_confirmable, run_confirmation
from yolor_ray.tune.leaderboard import ranked_entries, write_sweep_results
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.spec import SweepSpec
from yolor_ray.tune.trial import sweep_trial, trial_for

log = logging.getLogger("yolor_ray")


def reported_metrics(cfg) -> list[str]:
    """The metric keys a run of ``cfg`` reports every epoch (EpochReportHook)."""
    return [*(key for task in cfglib.coco_tasks(cfg) for key in coco_keys(task)), TRAIN_LOSS]


def prepare_sweep(spec: SweepSpec) -> PreparedSweep:
    """Every check that can fail before Ray starts, without writing anything."""
    train = spec.train
    cfg = cfglib.load_config(train.config, train.cfg_options)
    if cfg.train_cfg.get("val_interval", 1) != 1:
        raise cfglib.ConfigError(f"a sweep compares trials after every epoch, but {train.config.name} validates every "
                                 f"{cfg.train_cfg.val_interval} epochs; pass --cfg-options train_cfg.val_interval=1")
    valid_metrics = reported_metrics(cfg)
    if spec.metric not in valid_metrics:
        hint = [m for m in valid_metrics if spec.metric.split("/")[-1] in m][:3]
        raise cfglib.ConfigError(f"metric {spec.metric!r} is never reported by {train.config.name}"
                                 + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else "")
                                 + f"; it reports: {', '.join(valid_metrics)}")

    detector_cfg, base_implicit = split_yolor_cfg(cfg.model)
    base_implicit = base_implicit or {}
    available = tuple(available_placements(build_model(detector_cfg, cfg.get("default_scope", "mmdet"))))
    space = spacelib.parse_space(spec.space, available)
    _check_against_config(space, base_implicit)
    search = _pick_search(spec.search)
    space.to_tune(grid=search == "grid")  # a grid over a range fails here, before Ray

    storage_spec = StorageSpec(train.storage, train.s3_endpoint)
    storage = open_storage(storage_spec)
    storage.check()
    name = spec.name or default_name(f"sweep-{train.config.stem}")
    trial_spec = dataclasses.replace(
        train, config=train.config.resolve(), name=None, num_samples=0,  # sample images: per run, not per trial
        data_root=train.data_root.resolve() if train.data_root else None,
        from_baseline=_absolute(train.from_baseline), storage=storage.location(name, RUNS_DIR),
        checkpoint_metric=spec.metric, checkpoint_mode=spec.mode)
    # The annotation files are parsed here once; trials and the leaderboard reuse them.
    data = inspect_coco_folder(trial_spec.data_root, train.check_all_images) if trial_spec.data_root else None
    # One trial's run, checked in full (config, data, the YOLOR model builds).
    first = {d.key: d.values()[0] for d in space.dimensions}
    prepared = prepare_run(trial_for(trial_spec, first, base_implicit, "check"), data)
    fingerprint = hashlib.sha256(json.dumps(dict(cfg=prepared.config_text, run=prepared.fingerprint,
                                                 space=space.to_config(),
                                                 search=search, trials=spec.trials, metric=spec.metric,
                                                 mode=spec.mode, grace_period=spec.grace_period,
                                                 reduction_factor=spec.reduction_factor,
                                                 early_stopping=spec.early_stopping,
                                                 trainer_trials=spec.trainer_runs),
                                            sort_keys=True).encode()).hexdigest()[:16]
    state = _check_sweep_name(storage, name, fingerprint, confirm=spec.confirm > 0)
    search, points = _trials_of(space, search, spec.trials, train.seed)
    plan = PreparedSweep(spec, space, trial_spec, base_implicit, prepared.cfg.train_cfg.max_epochs, search, name,
                         storage, fingerprint, resuming=state == "unfinished", data=data, finished=state == "finished",
                         points=points)
    check_confirmable(plan)
    return plan


def _absolute(uri: str | None) -> str | None:
    """A local path made absolute: trials run in Tune's own working folders."""
    if uri is None or "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def _check_against_config(space: spacelib.SearchSpace, base_implicit: dict) -> None:
    """A searched setting that no variant would use, given the config's own settings."""
    if space["modeling"] is None:
        modeling = base_implicit.get("modeling", "vector")
        for key, needs in spacelib.MODELING_PARAMS.items():
            if space[key] is not None and modeling != needs:
                raise spacelib.SpaceError(f"{key}: searched, but only matters with modeling {needs!r}, and the "
                                          f"config's modeling is {modeling!r}; add modeling to the space")


def _trials_of(space: spacelib.SearchSpace, search: str, trials: int, seed: int) -> tuple[str, tuple[dict, ...]]:
    """The search that runs and the settings of the space's lists of choices its trials take,
    distinct (one per trial; none for Optuna, which picks its own). A ``trials`` that covers a
    space without ranges runs its grid, whatever the search: every variant once."""
    size = space.num_variants()
    if search != "grid" and size is not None and trials >= size:
        log.info("--trials %d covers the whole space of %d variant(s): running the grid (%d trial(s))",
                 trials, size, size)
        search = "grid"
    if search == "optuna":
        return search, ()
    return search, tuple(space.pick(trials, seed, grid=search == "grid"))


def _pick_search(search: str) -> str:
    if search != "auto":
        if search == "optuna" and not _has_optuna():
            raise OptionError("--search optuna needs Optuna: pip install optuna")
        return search
    return "optuna" if _has_optuna() else "random"


def _has_optuna() -> bool:
    return importlib.util.find_spec("optuna") is not None


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
        check_data_on_nodes(DataCheck.of(plan.data), plan.trial_spec.resources_per_worker())
    start = time.monotonic()
    grid = _tuner(plan, max_concurrent).fit()
    log.info("sweep finished in %.0f s", time.monotonic() - start)
    runs = open_storage(StorageSpec(plan.trial_spec.storage, plan.trial_spec.s3_endpoint))
    for result in grid:
        record_stopped_trial(runs, result)
    return ranked_entries(plan, grid)


def _tuner(plan: PreparedSweep, max_concurrent: int) -> tune.Tuner:
    """A new Tuner for the sweep (its manifest written first), or the stored one restored."""
    spec = plan.spec
    storage_path, filesystem = plan.storage.ray_storage()
    # An in-process sweep's Tune experiment is its runs/ folder, each trial's Tune folder its
    # run folder (runs/TRIAL): the checkpoints Tune persists for a trial land in its run.
    parent, experiment_name = (f"{storage_path}/{plan.name}", RUNS_DIR) if plan.in_actor else (storage_path,
                                                                                                 plan.name)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_trial, trial_spec=plan.trial_spec, base_implicit=plan.base_implicit,
                             data=plan.data, in_actor=plan.in_actor),
        actor_resources(plan.trial_spec, plan.in_actor))
    experiment = f"{parent}/{experiment_name}"
    if plan.resuming and tune.Tuner.can_restore(experiment, storage_filesystem=filesystem):
        log.info("resuming sweep %s", plan.location)
        return tune.Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=filesystem)
    manifest = SweepManifest(config=str(spec.train.config), fingerprint=plan.fingerprint, space=plan.space.to_config(),
                             search=plan.search, metric=spec.metric, mode=spec.mode,
                             early_stopping=spec.early_stopping)
    plan.storage.write_bytes(manifest.to_json().encode(), plan.name, SWEEP_FILE)
    log.info("sweep %s: %s search, %s trial(s), at most %d at a time, each %s; %s on %s (%s)\n%s",
             plan.location, plan.search, plan.trials,
             max_concurrent, describe_resources(trial_resources(plan.trial_spec, plan.in_actor))
             + (", in the trial's own process" if plan.in_actor else ", a TorchTrainer run"),
             "ASHA" if spec.early_stopping else "no early stopping", spec.metric, spec.mode, plan.space.describe())
    return tune.Tuner(
        trainable,
        # Random and grid search: the trials' settings of the lists of choices are the
        # generator's points, one per trial (ranges sampled); Optuna samples the space itself.
        param_space=plan.space.to_tune(),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, scheduler=_scheduler(spec, plan.epochs),
            search_alg=_searcher(plan.search, spec.train.seed, max_concurrent, plan.space, plan.points),
            num_samples=plan.trials,
            # Tune limits a Searcher through this; a variant generator limits itself.
            max_concurrent_trials=max_concurrent if plan.search == "optuna" else None,
            reuse_actors=plan.in_actor, **_in_process_folders(plan)),
        run_config=tune.RunConfig(name=experiment_name, storage_path=parent, storage_filesystem=filesystem,
                                  verbose=1, **_in_process_checkpoints(plan)))


def _in_process_folders(plan: PreparedSweep) -> dict:
    """In-process trials: Tune's trial folder is the trial's run folder (runs/TRIAL, named by
    the trial id alone)."""
    return dict(trial_dirname_creator=trial_folder) if plan.in_actor else {}


def _in_process_checkpoints(plan: PreparedSweep) -> dict:
    """In-process trials: Tune keeps their checkpoints as a TorchTrainer trial keeps its own
    (the best by the sweep's metric, plus the latest), and restarts a failed trial from its latest."""
    if not plan.in_actor:
        return {}
    spec = plan.trial_spec
    return dict(checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.keep_checkpoints,
                                                        checkpoint_score_attribute=spec.checkpoint_metric,
                                                        checkpoint_score_order=spec.checkpoint_mode),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures))


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


def _scheduler(spec: SweepSpec, epochs: int):
    if not spec.early_stopping:
        return FIFOScheduler()
    # max_t one past the last epoch: at max_t ASHA stops a trial, which would end its
    # process before its run has written results.json.
    return ASHAScheduler(time_attr="epoch", max_t=epochs + 1, grace_period=spec.grace_period,
                         reduction_factor=spec.reduction_factor)


class PointsGenerator(BasicVariantGenerator):
    """Tune's variant generator over the sweep's points, one trial each: a point sets every
    list of choices, the generator samples only the ranges (seeded). The points are distinct
    (SearchSpace.pick), but with a range, where a trial's sampled values tell it apart from
    one with its choices. A preset value is not one Tune counts as searched, so each trial's
    ``searched`` keys are added to its parameters (Tune's status table, TensorBoard's hparams)."""

    def __init__(self, points: tuple[dict, ...], searched: tuple[str, ...], seed: int, max_concurrent: int):
        super().__init__(points_to_evaluate=[dict(p) for p in points], random_state=seed,
                         max_concurrent=max_concurrent)
        self._searched = searched

    def next_trial(self):
        trial = super().next_trial()
        if trial is not None:
            trial.evaluated_params.update({k: trial.config[k] for k in self._searched if k in trial.config})
        return trial


def _searcher(search: str, seed: int, max_concurrent: int, space: spacelib.SearchSpace,
              points: tuple[dict, ...] = ()):
    if search == "optuna":
        from optuna.samplers import TPESampler  # deferred: Optuna is optional (_has_optuna)
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=TPESampler(seed=seed))
    searched = tuple(d.key for d in space.dimensions if d.choices is not None and len(d.choices) > 1)
    return PointsGenerator(points, searched, seed, max_concurrent)


def _state_of(plan: PreparedSweep) -> str:
    if plan.finished:
        return "complete: only its confirmation is trained"
    return "resuming the unfinished sweep" if plan.resuming else "a new sweep"


def describe_sweep(plan: PreparedSweep) -> tuple[str, str]:
    """``--dry-run`` of a sweep: its settings, then the first trial as a run would print it."""
    first = {d.key: d.values()[0] for d in plan.space.dimensions}
    trial, config_text = describe_run(prepare_run(trial_for(plan.trial_spec, first, plan.base_implicit, "first"),
                                                  plan.data))
    spec = plan.spec
    lines = [
        f"sweep:    {plan.location} ({_state_of(plan)})",
        f"trials:   {plan.trials} by {plan.search} search, {plan.epochs} epochs each, ranked by {spec.metric} "
        f"({spec.mode}), " + ("ASHA early stopping" if spec.early_stopping else "no early stopping"),
        f"space:    {json.dumps(plan.space.to_config())}",
        "first trial:",
        *("  " + line for line in trial.splitlines()),
    ]
    return "\n".join(lines), config_text
