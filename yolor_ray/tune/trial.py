"""One trial of a sweep: its run settings and Tune's trainable. How a run trains inside a
Tune trial (in its actor, or a TorchTrainer run) is :mod:`yolor_ray.paired.trial`'s; a trial's
run folder is ``runs/TRIAL`` (docs/tune.md)."""
from __future__ import annotations

import dataclasses

from ray import tune

from yolor_ray.paired.trial import train_trial
from yolor_ray.train.run_config import RunInputs
from yolor_ray.train.spec import TrainSpec
from yolor_ray.tune.variant import implicit_of

LR_KEY = "optim_wrapper.optimizer.lr"


def trial_for(trial_spec: TrainSpec, variant: dict, base_implicit: dict, name: str) -> TrainSpec:
    """The run settings of one trial: the variant's implicit settings (and LR) over the config."""
    implicit_variant = {k: v for k, v in variant.items() if k != "lr"}
    options = dict(trial_spec.cfg_options)
    if "lr" in variant:
        options[LR_KEY] = float(variant["lr"])
    return dataclasses.replace(trial_spec, name=name, cfg_options=options,
                               implicit=implicit_of(implicit_variant, base_implicit))


def sweep_trial(variant: dict, trial_spec: TrainSpec, base_implicit: dict, inputs: RunInputs | None = None,
                in_actor: bool = True) -> None:
    """Tune's function trainable: one trial = one training run named by the trial id;
    ``in_actor``: trained here (1 worker), else a TorchTrainer run."""
    name = tune.get_context().get_trial_id()
    train_trial(trial_for(trial_spec, variant, base_implicit, name), inputs, in_actor)
