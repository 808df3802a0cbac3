"""The sweep's ``Tuner``: a new one (its manifest written first) or the stored one restored,
over the trial trainable, with its scheduler (ASHA or none), its searcher (the sweep's points,
or Optuna) and, for in-process trials, Tune's own folders, checkpoints and failure policy; a
trial's storage fault ends the sweep (``paired.faults``)."""
from __future__ import annotations

import logging

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator

from yolor_ray.layout import RUNS_DIR, SWEEP_FILE
from yolor_ray.paired.capacity import actor_resources, trial_resources
from yolor_ray.paired.faults import Job, StorageFaultsEndTheJob
from yolor_ray.paired.progress import run_config_output
from yolor_ray.paired.run_lines import LinesPlan
from yolor_ray.paired.trial import trial_folder
from yolor_ray.records import SweepManifest
from yolor_ray.train.ray_cluster import describe_resources
from yolor_ray.tune import space as spacelib
from yolor_ray.tune.plan import PreparedSweep
from yolor_ray.tune.spec import SweepSpec
from yolor_ray.tune.trial import sweep_trial

log = logging.getLogger("yolor_ray")


def sweep_tuner(plan: PreparedSweep, max_concurrent: int) -> tune.Tuner:
    """A new Tuner for the sweep (its manifest written first), or the stored one restored."""
    spec = plan.spec
    storage_path, filesystem = plan.storage.ray_storage()
    # An in-process sweep's Tune experiment is its runs/ folder, each trial's Tune folder its
    # run folder (runs/TRIAL): the checkpoints Tune persists for a trial land in its run.
    parent, experiment_name = (f"{storage_path}/{plan.name}", RUNS_DIR) if plan.in_actor else (storage_path,
                                                                                                 plan.name)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_trial, trial_spec=plan.trial_spec, base_implicit=plan.base_implicit,
                             inputs=plan.inputs, in_actor=plan.in_actor),
        actor_resources(plan.trial_spec, plan.in_actor))
    experiment = f"{parent}/{experiment_name}"
    if plan.resuming and tune.Tuner.can_restore(experiment, storage_filesystem=filesystem):
        log.info("resuming sweep %s", plan.location)
        return tune.Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=filesystem)
    manifest = SweepManifest(config=str(spec.config), fingerprint=plan.fingerprint, space=plan.space.to_config(),
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
            metric=spec.metric, mode=spec.mode, scheduler=scheduler(spec, plan.epochs),
            search_alg=searcher(plan.search, spec.train.seed, max_concurrent, plan.space, plan.points),
            num_samples=plan.trials,
            # Tune limits a Searcher through this; a variant generator limits itself.
            max_concurrent_trials=max_concurrent if plan.search == "optuna" else None,
            reuse_actors=plan.in_actor, **_in_actor_folders(plan)),
        run_config=tune.RunConfig(name=experiment_name, storage_path=parent, storage_filesystem=filesystem,
                                  **run_config_output(sweep_lines(plan, max_concurrent), plan.trial_spec.verbose,
                                                      before=(StorageFaultsEndTheJob(sweep_job(plan)),)),
                                  **in_actor_checkpoints(plan)))


def sweep_job(plan: PreparedSweep) -> Job:
    """The sweep as its one line names it when a trial's storage fault ends it (``paired.faults``)."""
    return Job("sweep", plan.location, plan.name, plan.trial_spec.storage, noun="trial")


def sweep_lines(plan: PreparedSweep, max_concurrent: int) -> LinesPlan:
    """What the driver's lines of the trials know (``paired.progress``; fit inside its ``tune_output``)."""
    return LinesPlan(noun="trial", total=plan.trials, epochs=plan.epochs, location=plan.location,
                     metric=plan.spec.metric, at_a_time=max_concurrent)


def _in_actor_folders(plan: PreparedSweep) -> dict:
    """In-process trials: Tune's trial folder is the trial's run folder (runs/TRIAL, named by
    the trial id alone)."""
    return dict(trial_dirname_creator=trial_folder) if plan.in_actor else {}


def in_actor_checkpoints(plan: PreparedSweep) -> dict:
    """In-process trials: Tune keeps their checkpoints as a TorchTrainer trial keeps its own
    (the best by the sweep's metric, plus the latest), and restarts a failed trial from its latest."""
    if not plan.in_actor:
        return {}
    spec = plan.trial_spec
    return dict(checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoints.keep,
                                                        checkpoint_score_attribute=spec.checkpoints.metric,
                                                        checkpoint_score_order=spec.checkpoints.mode),
                failure_config=tune.FailureConfig(max_failures=spec.checkpoints.max_failures))


def scheduler(spec: SweepSpec, epochs: int):
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


def searcher(search: str, seed: int, max_concurrent: int, space: spacelib.SearchSpace,
             points: tuple[dict, ...] = ()):
    if search == "optuna":
        from optuna.samplers import TPESampler  # deferred: Optuna is optional (checks.has_optuna)
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=TPESampler(seed=seed))
    searched = tuple(d.key for d in space.dimensions if d.choices is not None and len(d.choices) > 1)
    return PointsGenerator(points, searched, seed, max_concurrent)
