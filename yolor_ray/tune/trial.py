"""One trial of a sweep: its run settings, what it asks of the cluster, and Tune's trainable."""
from __future__ import annotations

import dataclasses

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from yolor_ray.data import CocoFolder
from yolor_ray.train.driver import run_training
from yolor_ray.train.ray_cluster import HEAD_RESOURCE
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.space import implicit_of

LR_KEY = "optim_wrapper.optimizer.lr"
# A trial's own actor: one CPU, on the head (see HEAD_RESOURCE).
TRIAL_ACTOR = {"CPU": 1, HEAD_RESOURCE: 0.001}


def trial_for(trial_spec: TrainSpec, variant: dict, base_implicit: dict, name: str) -> TrainSpec:
    """The run settings of one trial: the variant's implicit settings (and LR) over the config."""
    implicit_variant = {k: v for k, v in variant.items() if k != "lr"}
    options = dict(trial_spec.cfg_options)
    if "lr" in variant:
        options[LR_KEY] = float(variant["lr"])
    return dataclasses.replace(trial_spec, name=name, cfg_options=options,
                               implicit=implicit_of(implicit_variant, base_implicit))


def trial_resources(trial_spec: TrainSpec) -> dict[str, float]:
    """What one trial needs from the cluster: its own CPU plus its trainer's workers."""
    need = trial_spec.workers_reservation()
    need["CPU"] += TRIAL_ACTOR["CPU"]
    return need


def sweep_trial(variant: dict, trial_spec: TrainSpec, base_implicit: dict, data: CocoFolder | None = None) -> None:
    """Tune's function trainable: one trial = one Ray Train run named by the trial id."""
    name = tune.get_context().get_trial_id()
    run_training(trial_for(trial_spec, variant, base_implicit, name), callbacks=(TuneReportCallback(),), data=data,
                 check_nodes=False,  # the sweep's driver checked them for every trial
                 progress=False)  # Tune's own status table is the sweep's progress
