"""``yolor-ray reproduce --dry-run``: the plan and what it will cost, nothing written (with
``--resolution H`` and an sd, ``--assume-sd`` or ``--prior``: the seeds each row leads to, priced). With
``--calibrate N`` Ray starts (or is joined) to time N iterations of each row's configs on one
worker and to size the runs at a time by the cluster; otherwise the figures are the ones given."""
from __future__ import annotations

import os

from yolor_ray.paired.capacity import concurrency, trial_resources
from yolor_ray.paired.plan import DONE, UNFINISHED
from yolor_ray.reference import CONFIGS, ROW_TITLES, baseline_config, yolor_config
from yolor_ray.reproduce.calibrate import seconds_per_iteration
from yolor_ray.reproduce.estimate import estimate, format_estimate
from yolor_ray.reproduce.launch import runs_at_a_time
from yolor_ray.reproduce.plan import ReproducePlan, prepare_reproduction
from yolor_ray.reproduce.price import format_price, price_resolution, row_sds
from yolor_ray.reproduce.spec import ARMS, ReproduceSpec
from yolor_ray.train.ray_cluster import ray_session


def describe_reproduction(spec: ReproduceSpec) -> str:
    resolution = spec.resolution
    sds = row_sds(spec) if resolution.target is not None and resolution.priced else None
    plan = prepare_reproduction(spec)
    if spec.calibrate:
        with ray_session(spec.train.address, verbose=spec.train.verbose) as local:
            measured = seconds_per_iteration(plan.configs, spec.train, spec.calibrate)
            at_a_time, source = runs_at_a_time(plan, local), "as many as the cluster holds now"
        seconds = {key: (times.train_s, times.val_s, f"measured, median of {spec.calibrate} iteration(s) each")
                   for key, times in measured.items()}
    else:
        seconds = {(row, arm): (value, None, "given (--seconds-per-iter)")
                   for row, value in spec.seconds_per_iter.items() for arm in ARMS if row in spec.rows}
        at_a_time, source = _runs_at_a_time_without_ray(plan)
    pilot = estimate(plan, seconds, at_a_time, source)
    lines = [*_plan_lines(plan), *format_estimate(pilot)]
    if sds is not None:
        lines += format_price(price_resolution(plan, pilot, *sds))
    elif resolution.target is not None:
        lines.append(f"resolution: ±{resolution.target:g} AP from a pilot of {spec.seeds} seeds, at most "
                     f"{resolution.max_seeds}; the estimate above is the pilot's: pass --assume-sd S or --prior "
                     "NAME_OR_PATH to price the seeds it leads to")
    return "\n".join(lines)


def _runs_at_a_time_without_ray(plan: ReproducePlan) -> tuple[int, str]:
    spec = plan.spec
    if spec.max_concurrent:
        return spec.max_concurrent, "--max-concurrent"
    if spec.train.address or os.environ.get("RAY_ADDRESS"):
        return 1, "a cluster's size is not known without --calibrate; pass --max-concurrent N"
    import torch  # deferred: only a local machine's GPUs are counted here

    machine = {"CPU": os.cpu_count() or 1, "GPU": torch.cuda.device_count()}
    fits = max(concurrency(machine, trial_resources(spec.train, plan.in_actor)), 1)
    return fits, f"what this machine holds: {machine['CPU']} CPU, {machine['GPU']} GPU"


def _plan_lines(plan: ReproducePlan) -> list[str]:
    spec, train = plan.spec, plan.spec.train
    done = sum(r.state == DONE for r in plan.runs)
    unfinished = sum(r.state == UNFINISHED for r in plan.runs)
    state = (f"resuming: {done} run(s) done, {unfinished} unfinished ({sum(r.checkpointed for r in plan.runs)} "
             f"with a checkpoint), {len(plan.pending) - unfinished} new"
             if plan.resuming else "a new reproduction")
    lines = ["dry run: nothing was started or written",
             f"reproduction: {plan.location} ({state})",
             f"runs:     {len(plan.runs)} = {len(spec.rows)} row(s) x baseline/YOLOR x {spec.seeds} seeds; "
             f"{len(plan.pending)} to train, {done} reused",
             f"seeds:    {', '.join(map(str, spec.seed_list))} (a seed's baseline and YOLOR runs: the same seed, "
             "the same data order)",
             f"workers:  {train.scaling.num_workers} x {'GPU' if train.scaling.use_gpu else 'CPU'} per run "
             f"({train.scaling.cpus_per_worker} CPU each){', AMP ' + train.amp if train.amp else ''}; "
             + ("each in its Tune actor" if plan.in_actor else "each a TorchTrainer run"),
             "rows:"]
    for row in spec.rows:
        cfg = plan.configs[row, "baseline"]
        files = " + ".join(str(config.relative_to(CONFIGS.parent)) for config in (baseline_config(row),
                                                                                   yolor_config(row)))
        lines.append(f"  {row:<15} {ROW_TITLES[row]}: {cfg.train_cfg.max_epochs} epochs, batch "
                     f"{cfg.train_dataloader.batch_size} per worker ({files})")
    for key, values in (("--cfg-options", train.cfg_options), ("--yolor-options", spec.yolor_options)):
        if values:
            lines.append(f"{key}: " + " ".join(f"{k}={v!r}" for k, v in values.items()))
    checks = dict.fromkeys(f"{key}: {value}" for run in plan.prepared.values() for key, value in run.checks.items())
    lines += [f"checked:  {line}" for line in checks]
    return lines
