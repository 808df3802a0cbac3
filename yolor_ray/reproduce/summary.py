"""The reproduction's table from its runs: per row and metric the seeds' values of both arms,
mean +- sd, and the paired YOLOR - baseline difference with its 95% interval (``noise``),
the reference table's own figures beside them, and what each run and row cost in device-hours."""
from __future__ import annotations

from dataclasses import dataclass

from yolor_ray.noise import METHOD, mean_sd, paired_difference
from yolor_ray.records import Reproduction, RunResults
from yolor_ray.reference import METRIC_LABELS, REFERENCE_METRICS, ROW_TITLES, reference_figure
from yolor_ray.reproduce.plan import PlannedRun
from yolor_ray.reproduce.spec import ARMS, ReproduceSpec

COMPLETED, FAILED, NOT_RUN = "completed", "failed", "not run"


@dataclass(frozen=True)
class RunOutcome:
    """A planned run after this pass: its results, or why it has none."""

    run: PlannedRun
    location: str
    results: RunResults | None
    error: str | None = None

    @property
    def status(self) -> str:
        return COMPLETED if self.results is not None else FAILED if self.error else NOT_RUN


def device_hours(results: RunResults, cpus_per_worker: int) -> float:
    """GPU-hours of a GPU run, CPU-hours of a CPU run: its training time x what it held."""
    devices = (results.world_size or 1) * (1 if results.use_gpu else cpus_per_worker)
    return results.train_time_s * devices / 3600


def summarize(spec: ReproduceSpec, name: str, location: str, settings: dict,
              outcomes: list[RunOutcome]) -> Reproduction:
    """The record of a reproduction ``name`` at ``location`` from its runs' outcomes."""
    train = spec.train
    seeds = spec.seed_list
    runs = []
    for o in outcomes:
        r = o.results
        runs.append(dict(row=o.run.row, arm=o.run.arm, seed=o.run.seed, run=o.location, status=o.status,
                         error=o.error, metrics=r.metrics if r else {}, train_time_s=r.train_time_s if r else None,
                         device_hours=round(device_hours(r, train.scaling.cpus_per_worker), 6) if r else None,
                         restarts=r.restarts if r else None))
    rows = [_row(row, [o for o in outcomes if o.run.row == row], seeds, train.scaling.cpus_per_worker)
            for row in spec.rows]
    return Reproduction(name=name, location=location, method=METHOD, device="GPU" if train.scaling.use_gpu else "CPU",
                        seeds=seeds, settings=dict(settings, cpus_per_worker=train.scaling.cpus_per_worker), rows=rows,
                        runs=runs)


def _row(row: str, outcomes: list[RunOutcome], seeds: list[int], cpus_per_worker: int) -> dict:
    by_arm = {arm: {o.run.seed: o.results for o in outcomes if o.run.arm == arm} for arm in ARMS}
    metrics = []
    for metric in REFERENCE_METRICS[row]:
        values = {arm: [_ap(by_arm[arm].get(s), metric) for s in seeds] for arm in by_arm}
        if all(v is None for arm in values for v in values[arm]):
            continue  # not reported at this scale (no run finished, or no masks)
        entry = dict(metric=metric, label=METRIC_LABELS[metric])
        for arm, per_seed in values.items():
            present = [v for v in per_seed if v is not None]
            mean, sd = mean_sd(present) if present else (None, None)
            entry[arm] = dict(values=per_seed, mean=mean, sd=sd, reference_figure=reference_figure(row, arm, metric))
        pairs = [(y, b) for y, b in zip(values["yolor"], values["baseline"]) if y is not None and b is not None]
        entry["pairs"] = len(pairs)
        if len(pairs) >= 2:
            diff = paired_difference([y for y, _ in pairs], [b for _, b in pairs])
            entry.update(diff_mean=diff.mean, diff_sd=diff.sd, low=diff.low, high=diff.high,
                         within_noise=diff.within_noise)
        base_figure, yolor_figure = entry["baseline"]["reference_figure"], entry["yolor"]["reference_figure"]
        entry["reference_delta"] = round(yolor_figure - base_figure, 2) if None not in (base_figure, yolor_figure) else None
        metrics.append(entry)
    hours = {arm: [device_hours(r, cpus_per_worker) for r in by_arm[arm].values() if r is not None]
             for arm in by_arm}
    failed = [dict(arm=o.run.arm, seed=o.run.seed, error=o.error or "not run") for o in outcomes
              if o.results is None]
    return dict(row=row, model=ROW_TITLES[row], metrics=metrics, failed=failed,
                completed=sum(o.results is not None for o in outcomes), planned=len(outcomes),
                device_hours=dict(baseline=sum(hours["baseline"]), yolor=sum(hours["yolor"]),
                                  per_run={arm: mean_sd(hours[arm])[0] if hours[arm] else None for arm in ARMS}))


def _ap(results: RunResults | None, metric: str) -> float | None:
    """The run's final ``metric`` in % (the reference table's unit); None: no run, or not reported."""
    if results is None or results.metrics.get(metric) is None or results.metrics[metric] < 0:
        return None
    return 100 * results.metrics[metric]
