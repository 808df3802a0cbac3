"""The reproduction's record from its runs' outcomes: per row and metric the seeds' values of
both arms in %, mean +- sd, and the paired YOLOR - baseline difference with its 95% interval
(``paired.summary``; Stein's with ``--resolution``, and how far each row got), the reference
table's own figures beside them, and what each run and row cost in device-hours."""
from __future__ import annotations

from yolor_ray.noise import METHOD, mean_sd
from yolor_ray.paired.stages import FixedSeeds
from yolor_ray.records import ReproducedMetric, ReproducedRow, Reproduction, RowHours, RunOutcome
from yolor_ray.reference import METRIC_LABELS, REFERENCE_METRICS, ROW_TITLES, reference_figure
from yolor_ray.reproduce.plan import row_comparison, seeds_of
from yolor_ray.reproduce.spec import ReproduceSpec
from yolor_ray.resolution import METHOD as STEIN_METHOD


def summarize(spec: ReproduceSpec, name: str, location: str, settings: dict,
              outcomes: list[RunOutcome]) -> Reproduction:
    """The record of a reproduction ``name`` at ``location`` from its runs' outcomes."""
    train, seeding = spec.train, seeds_of(spec)
    rows = [_row(row, outcomes, seeding) for row in spec.rows]
    target = spec.resolution.target
    return Reproduction(name=name, location=location, method=METHOD if target is None else STEIN_METHOD,
                        device="GPU" if train.scaling.use_gpu else "CPU", seeds=spec.seed_list,
                        settings=dict(settings, cpus_per_worker=train.scaling.cpus_per_worker), rows=rows,
                        runs=outcomes, resolution=target)


def _row(row: str, outcomes: list[RunOutcome], seeding: FixedSeeds) -> ReproducedRow:
    comparison = row_comparison(row)
    yolor, baseline = comparison.arms
    mine = [o for o in outcomes if o.arm in comparison.arms]
    metrics = []
    for metric in REFERENCE_METRICS[row]:
        paired = seeding.paired(mine, comparison, metric)  # in %: the reference table's unit
        if not paired.variant.present and not paired.baseline.present:
            continue  # not reported at this scale (no run finished, or no masks)
        figures = reference_figure(row, "baseline", metric), reference_figure(row, "yolor", metric)
        delta = round(figures[1] - figures[0], 2) if None not in figures else None
        metrics.append(ReproducedMetric(METRIC_LABELS[metric], paired, *figures, reference_delta=delta))
    hours = {arm: [o.device_hours for o in mine if o.arm == arm and o.device_hours is not None]
             for arm in (baseline, yolor)}
    per_run = {arm: mean_sd(values)[0] if values else None for arm, values in hours.items()}
    return ReproducedRow(row=row, model=ROW_TITLES[row], baseline_arm=baseline, yolor_arm=yolor, metrics=metrics,
                         failed=[o for o in mine if o.status != "completed"],
                         completed=sum(o.status == "completed" for o in mine), planned=len(mine),
                         device_hours=RowHours(sum(hours[baseline]), sum(hours[yolor]), per_run[baseline],
                                               per_run[yolor]),
                         reached=seeding.reached(mine, comparison, [m.paired for m in metrics]))
