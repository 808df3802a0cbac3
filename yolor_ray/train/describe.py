"""``--dry-run`` of a run: what a prepared run (``train.prepare``) would train, one line a fact."""
from __future__ import annotations

from mmengine.config import Config

from yolor_ray.implicit import split_yolor_cfg
from yolor_ray.train.prepare import PreparedRun


def effective_lr(cfg: Config, total_batch: int) -> str:
    """The learning rate MMEngine will train with: the config's, scaled by the total batch
    when ``auto_scale_lr`` is on (``config.edits.use_batch_recipe``)."""
    lr = cfg.optim_wrapper.optimizer.get("lr")
    scale = cfg.get("auto_scale_lr") or {}
    if lr is None or not scale.get("enable") or total_batch == scale["base_batch_size"]:
        return str(lr)
    return f"{lr * total_batch / scale['base_batch_size']:.6g} (the config's {lr} for a total batch of " \
           f"{scale['base_batch_size']}, scaled to {total_batch})"


def describe_run(run: PreparedRun) -> tuple[str, str]:
    """``--dry-run``: what would run (one line a fact) and the merged config."""
    spec, cfg = run.spec, run.cfg
    scaling = spec.scaling
    detector_cfg, implicit = split_yolor_cfg(cfg.model)
    variant = f"{detector_cfg['type']} + YOLOR {implicit!r}" if implicit is not None else detector_cfg["type"]
    batch = cfg.train_dataloader.batch_size
    lines = [
        "dry run: nothing was started or written",
        f"config:   {spec.config}",
        f"model:    {variant}, {run.num_params / 1e6:.2f}M parameters",
        f"workers:  {scaling.num_workers} x {'GPU' if scaling.use_gpu else 'CPU'} "
        f"({scaling.cpus_per_worker} CPU each), "
        f"batch {batch} per worker = {batch * scaling.num_workers} in total",
        f"schedule: {cfg.train_cfg.get('max_epochs')} epochs, optimizer {cfg.optim_wrapper.optimizer.get('type')} "
        f"lr {effective_lr(cfg, batch * scaling.num_workers)} ({cfg.optim_wrapper.get('type', 'OptimWrapper')})",
        *(f"{key + ':':<9} {value}" for key, value in run.checks.items()),
        f"classes:  {', '.join(run.classes) or '(from the config)'}",
        f"storage:  {run.location} ({'resuming the unfinished run' if run.resuming else 'a new run'})",
        f"trackers: {', '.join(['tensorboard (logs/ in storage)', *spec.trackers.names])}",
    ]
    return "\n".join(lines), run.config_text
