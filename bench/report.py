"""Render the latest bench/results/*.json as the tables in bench/README.md (between the
``<!-- results -->`` markers), so the README shows exactly what was measured.

    python -m bench.report
"""
from __future__ import annotations

import json
import statistics
import sys

from bench.common import REPO, RESULTS

README = REPO / "bench" / "README.md"
BEGIN, END = "<!-- results -->", "<!-- /results -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _ratio(r: dict) -> str:
    return f"{r['mean']:.3f} ± {r['stdev']:.3f}"


def _met(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _stamp(result: dict) -> str:
    m = result["machine"]
    return f"_{result['finished']}, {m['cpus']} CPUs ({m.get('cpu_model') or 'unknown CPU'}), torch {m['torch']}_"


def ray_overhead(r: dict) -> list[str]:
    runs = r["runs"]
    mean = {v: statistics.fmean(x["iteration_s"]["mean"] for x in runs if x["variant"] == v) for v in ("ray", "plain")}
    return ["### Ray overhead (1 worker vs plain MMEngine Runner)", "", _stamp(r), "",
            "| s/iter, Ray | s/iter, plain | Ray / plain (mean ± sd over pairs) | goal | met | start-up, Ray | "
            "start-up, plain |", "| ---: | ---: | ---: | :-: | :-: | ---: | ---: |",
            f"| {mean['ray']:.3f} | {mean['plain']:.3f} | {_ratio(r['ratio'])} ({len(r['ratio']['pairs'])} pairs) | "
            f"<= 1.03 | {_met(r['met'])} | {r['startup_s']['ray']:.1f} s | {r['startup_s']['plain']:.1f} s |",
            "", "Per pair: " + ", ".join(f"{p:.3f}" for p in r["ratio"]["pairs"]) + ". While the iterations ran, "
            f"other processes took {r['other_processes_cores']['ray']:.2f} cores beside the Ray worker "
            f"({_top(r['top_other_processes']['ray'])}) and {r['other_processes_cores']['plain']:.2f} beside the "
            f"plain Runner ({_top(r['top_other_processes']['plain'])}).", *_startup_profile(r)]


def _startup_profile(r: dict) -> list[str]:
    """Start-up's goal, its phases and the CPU-seconds before the first epoch (results since issue 24)."""
    if "startup_phases_s" not in r:
        return []
    extra = r["startup_s"]["ray"] - r["startup_s"]["plain"]

    def phases(variant: str) -> str:
        return ", ".join(f"{phase} {s:.1f}" for phase, s in r["startup_phases_s"][variant].items())

    def cpu(variant: str) -> str:
        used = r["startup_cpu_s"][variant]
        listed = ", ".join(f"{name} {s:.1f}" for name, s in used.items() if s >= 0.1)
        return f"{sum(used.values()):.1f} in all: {listed}"

    goal = f"goal {r['startup_goal']}: {_met(r['startup_met'])}"
    return ["", f"Start-up: Ray {extra:+.1f} s over the plain Runner ({goal}); every process of a run starts "
            "on one core. Seconds per phase (mean over runs), Ray: "
            f"{phases('ray')}; plain: {phases('plain')}. CPU-seconds before the first epoch, Ray: {cpu('ray')}; "
            f"plain: {cpu('plain')}."]


def _top(processes: dict) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in list(processes.items())[:4]) or "none"


def implicit_cost(r: dict) -> list[str]:
    lines = ["### Implicit cost (default YOLOR variant, ResNet-50 models)", "", _stamp(r), "",
             "| family | added params | train step, baseline | YOLOR / baseline | inference, baseline | "
             "unfused / baseline | fused / baseline | folded / kept |",
             "| :-- | ---: | ---: | ---: | ---: | ---: | ---: | :-: |"]
    for family, f in r["families"].items():
        lines.append(f"| {family} | {f['added_params']:,} ({f['added_pct']:.4f}%) | "
                     f"{f['train_step_s']['baseline']['mean']:.2f} s | {_ratio(f['train_ratio'])} | "
                     f"{f['inference_s']['baseline']['mean'] * 1000:.0f} ms | {_ratio(f['unfused_ratio'])} | "
                     f"{_ratio(f['fused_ratio'])} | {f['fused']['folded']} / {f['fused']['kept']} |")
    inputs = r["inputs"]
    lines += ["", f"{inputs['image_size']} px, train batch {inputs['batch_size']}, inference batch 1, "
              f"{inputs['threads']} threads; {inputs['steps']} timed train steps and {inputs['repeats']} inference "
              "passes per model, interleaved. Goals: YOLOR / baseline <= 1.02 (train: met by "
              f"{sum(r['met']['train'].values())} of {len(r['met']['train'])}), fused / baseline <= 1.01 "
              f"(met by {sum(r['met']['fused'].values())} of {len(r['met']['fused'])})."]
    return lines


def scaling(r: dict) -> list[str]:
    return ["### Data-parallel scaling (CPU, 2 cores)", "", _stamp(r), "",
            "| 1 worker x 2 threads | 2 workers x 1 thread | speed-up (mean ± sd over pairs) |",
            "| ---: | ---: | ---: |",
            f"| {r['images_per_s']['1']:.2f} images/s | {r['images_per_s']['2']:.2f} images/s | "
            f"{_ratio(r['speedup'])} ({len(r['speedup']['pairs'])} pairs) |", "", f"GPU: {r['gpu']}."]


def asha(r: dict) -> list[str]:
    s, n = r["sweeps"], r["noise"]

    def best(mode):
        b = s[mode]["best"]
        return f"{b['ap']:.4f} ({b['variant']})" if b else "-"

    def cpu(mode):
        groups, trials = s[mode]["cpu"]["groups"], len(s[mode]["trials"])
        return ", ".join(f"{name} {seconds:.0f} ({seconds / trials:.0f} a trial)" for name, seconds in groups.items())

    pairs = "; ".join(f"{p['variant']} {p['ap'][0]:.4f} / {p['ap'][1]:.4f}" for p in n["pairs"])
    return ["### ASHA vs exhaustive (8 variants, shapes)", "", _stamp(r), "",
            "| sweep (seed) | worker-seconds | CPU-seconds, all processes | wall | epochs trained | completed | "
            "best bbox AP (variant) |",
            "| :-- | ---: | ---: | ---: | ---: | ---: | :-- |",
            *(f"| {mode} ({s[mode]['seed']}) | {s[mode]['worker_seconds']:.0f} | {s[mode]['cpu']['total_cpu_s']:.0f} | "
              f"{s[mode]['wall_s']:.0f} s | {s[mode]['epochs_trained']} | "
              f"{sum(t['status'] == 'completed' for t in s[mode]['trials'])}/{len(s[mode]['trials'])} | {best(mode)} |"
              for mode in ("exhaustive", "asha")),
            "", f"ASHA / exhaustive worker-seconds: **{r['cost_ratio']:.3f}** (goal <= 0.5: {_met(r['met']['cost'])}); "
            f"CPU-seconds: {r['cpu_ratio']:.3f}; epochs trained: {r['epoch_ratio']:.3f}. "
            f"Best AP gap (exhaustive - ASHA): {r['best_ap_gap']:+.4f}; "
            f"seed noise (seeds {n['seeds'][0]} / {n['seeds'][1]}, the variants both ran to the end): {pairs}; "
            f"one run's sd {n['sd']:.4f}, largest difference {n['max_abs_diff']:.4f} (gap within it: "
            f"{_met(r['met']['ap'])}). Both sweeps: {r['sweeps_wall_s']:.0f} s; the script: "
            f"{r['script_s'] / 60:.1f} min (budget 10).",
            "", "Profile: a trial's first report came {first_report_s:.0f} s after it started, later epochs "
            "{later_epoch_s:.0f} s apart: about {startup_s:.0f} s of start-up per trial (exhaustive sweep). "
            "CPU-seconds by process: ".format(**s["exhaustive"]["profile"])
            + "; ".join(f"{mode}: {cpu(mode)}" for mode in ("exhaustive", "asha")) + "."]


def coco_scale(r: dict) -> list[str]:
    i, goal = r["inputs"], r["goal"]

    def row(m: dict) -> str:
        return (f"| `prepare_{m['what']}` | {m['trials']} | {m['wall_s']:.1f} s | {m['peak_rss_bytes'] / 1e9:.2f} GB | "
                f"{len(m['parses'])} |")

    return ["### The driver at COCO scale (before any cluster time)", "", _stamp(r), "",
            f"{i['images']:,} train images, {i['boxes']:,} boxes ({i['train_annotation_bytes'] / 1e6:.0f} MB of "
            f"annotations), `{i['config']}`.", "",
            "| step | trials | wall | peak RSS | annotation files parsed |", "| :-- | --: | --: | --: | --: |",
            row(r["run"]), row(r["sweep"]), "",
            f"Goal: a run <= {goal['run_wall_s']:.0f} s ({_met(r['met']['run_wall'])}) and <= "
            f"{goal['run_peak_gb']:.0f} GB peak ({_met(r['met']['run_memory'])}); a sweep of 8 trials parses the "
            f"annotation files no more often than a run ({_met(r['met']['sweep_parses_once'])}) and stays under the "
            f"same {goal['run_peak_gb']:.0f} GB ({_met(r['met']['sweep_memory'])}; its peak is "
            f"{r['sweep']['peak_rss_bytes'] / r['run']['peak_rss_bytes'] - 1:+.0%} of the run's: it also builds the "
            f"detector without implicit layers to list its placements)."]


def coco_eval(r: dict) -> list[str]:
    i, goal = r["inputs"], r["goal"]

    def _gb(m: dict) -> str:
        return f"{m['peak_rss_bytes'] / 1e9:.2f} GB ({m['rss_before_eval_bytes'] / 1e9:.2f})"

    def row(task: str, label: str) -> str:
        slow, fast, t = r["runs"][task]["pycocotools"], r["runs"][task]["faster"], r["tasks"][task]
        return (f"| {label} | {slow['eval_s']:.1f} s | {fast['eval_s']:.1f} s | {t['ratio']:.2f} | "
                f"{_gb(slow)} | {_gb(fast)} | "
                f"{t['max_stat_difference']:.1e} |")

    return ["### COCO evaluation at COCO val's size: pycocotools vs faster-coco-eval", "", _stamp(r), "",
            f"{i['images']:,} images, {i['classes']} classes, {i['gt_boxes']:,} boxes, {i['detections_per_image']} "
            f"detections per image; COCOeval (evaluate, accumulate, summarize) with CocoMetric's parameters, "
            "each in a fresh process importing no torch: peak RSS, in brackets the RSS before COCOeval (the loaded "
            "annotations and detections).", "",
            "| task | pycocotools | faster-coco-eval | ratio | peak RSS pycocotools | peak RSS faster | "
            "largest stat difference |", "| :-- | --: | --: | --: | --: | --: | --: |",
            row("bbox", "boxes"), row("segm", "masks"), "",
            f"Goal: pycocotools / faster >= {goal['bbox_ratio']:.0f} for boxes ({_met(r['met']['bbox_ratio'])}); "
            f"all 12 stats equal to {goal['tolerance']:.0e} (boxes {_met(r['met']['exact']['bbox'])}, masks "
            f"{_met(r['met']['exact']['segm'])}). Wall times of one evaluation each"
            + (f"; {i['note']}." if i.get("note") else ".")]


def trial_overhead(r: dict) -> list[str]:
    def row(kind: str, label: str) -> str:
        f = r["fixed"][kind]
        groups = ", ".join(f"{g} {s:g}" for g, s in f["groups"].items() if abs(s) >= 0.5)
        return f"| {label} | {f['wall_s']:.1f} s | {f['cpu_s']:.1f} | {groups} |"

    sweeps = r["sweeps"]
    return ["### Fixed cost of a 1-worker sweep trial", "", _stamp(r), "",
            "| trial | wall | CPU-s, all processes | CPU-s by process |", "| :-- | --: | --: | :-- |",
            row("in_process", "in its Tune actor (default)"), row("trainer", "a TorchTrainer run (`--trainer-runs`)"),
            "", f"In its Tune actor / a TorchTrainer run: wall {r['wall_ratio']:.2f}, CPU-s {r['cpu_ratio']:.2f}. "
            f"Goal for the trial in its Tune actor: <= 10 s wall ({_met(r['met']['wall'])}) and <= 15 CPU-s "
            f"({_met(r['met']['cpu'])}). "
            f"Each is {r['inputs']['trials']} trials x 1 epoch less 1 trial x {r['inputs']['trials']} epochs, over "
            f"{r['inputs']['trials'] - 1} (sweeps of "
            + ", ".join(f"{kind} {name}: {s['wall_s']:.0f} s / {s['cpu_s']:.0f} CPU-s"
                        for kind in ("in_process", "trainer") for name, s in sweeps[kind].items())
            + f"); the script: {r['script_s'] / 60:.1f} min."]


def warm_start(r: dict) -> list[str]:
    p, ratios, i = r["phases"], r["ratios"], r["inputs"]

    def sweep_row(key: str, label: str) -> str:
        s = p[key]
        best = s["best"]
        return (f"| {label} | {s['worker_seconds']:.0f} | {s['cpu_s']:.0f} | {s['wall_s']:.0f} s | "
                f"{s['epochs_trained']} | {s['completed']}/{len(s['trials'])} | {best['ap']:.4f} ({best['variant']}) |")

    def confirmation(key: str) -> str:
        c = p[key]
        values = ", ".join(f"{v:.4f}" for v in c["values"])
        baseline = ", ".join(f"{v:.4f}" for v in c["baseline"]["values"])
        return (f"{c['variant']} {c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}], "
                f"{'within' if c['within_noise'] else 'beyond'} noise (values {values} vs baseline {baseline}; "
                f"{c['worker_seconds']:.0f} worker-s, {c['cpu_s']:.0f} CPU-s)")

    base = p["baseline"]
    return ["### Warm-started ASHA vs every variant from scratch (8 variants, shapes)", "", _stamp(r), "",
            "| sweep | worker-seconds | CPU-seconds, all processes | wall | epochs trained | completed | "
            "best bbox AP (variant) |", "| :-- | ---: | ---: | ---: | ---: | ---: | :-- |",
            sweep_row("scratch", f"from scratch, {i['epochs']} epochs, no early stopping"),
            sweep_row("warm", f"from the baseline, {i['finetune_epochs']} epochs, ASHA (reduction factor "
                              f"{i['reduction_factor']})"),
            "", f"Warm / scratch, the baseline's training not counted: worker-seconds "
            f"**{ratios['worker_seconds']['without_baseline']:.3f}**, CPU-seconds "
            f"**{ratios['cpu_s']['without_baseline']:.3f}** (goal <= 0.15: {_met(r['met']['worker_seconds'])} / "
            f"{_met(r['met']['cpu_s'])}); counted: {ratios['worker_seconds']['with_baseline']:.3f} / "
            f"{ratios['cpu_s']['with_baseline']:.3f}; epochs trained: {ratios['epochs']:.3f}. The baseline "
            f"({i['epochs']} epochs, `yolor-ray train`, 1 worker): {base['worker_seconds']:.0f} s, "
            f"{base['cpu_s']:.0f} CPU-s, bbox AP {base['ap']:.4f}.",
            "", f"Confirmed with 2 seeds ({p['scratch_confirmation']['method']}), the winner's difference to the "
            f"baseline: from scratch {confirmation('scratch_confirmation')}; warm-started "
            f"{confirmation('warm_confirmation')}. The script: {r['script_s'] / 60:.1f} min (budget 10)."]



def gpu(r: dict) -> list[str]:
    d = r["device"]
    lines = ["### One GPU: the reference rows' train steps, memory and throughput", "",
             f"_{r['finished']}, {d['name']} ({d['memory_gb']:.0f} GB), torch {r['machine']['torch']}, "
             f"Python {r['machine']['python']}_", "",
             "Measured matmul rates (TFLOP/s), the 'peak' below: "
             + ", ".join(f"{k} {v:.0f}" for k, v in d["matmul_tflops"].items()) + ".", "",
             "| row | precision @ images | step, baseline | images/s | share of peak | peak memory | "
             "YOLOR / baseline | implicit learned | 1x on COCO |",
             "| :-- | :-- | ---: | ---: | ---: | ---: | ---: | :-: | ---: |"]
    for row, result in r["rows"].items():
        for key, c in result["cells"].items():
            if "error" in c:
                lines.append(f"| {row} | {key} | {c['error']} | | | | | | |")
                continue
            lines.append(f"| {row} | {key} | {c['step_s']['baseline']['mean'] * 1e3:.0f} ms | "
                         f"{c['images_per_s']['baseline']:.1f} | {c['share_of_peak']:.1%} | "
                         f"{c['peak_gb']['baseline']:.1f} GB | {_ratio(c['ratio'])} | {c['implicit_learned']} | "
                         f"{c['gpu_hours_1x']:.1f} GPU-h |")
    lines += ["", "| row | inference, baseline (batch 1, fp32) | unfused / baseline | fused / baseline | "
              "folded / kept |", "| :-- | ---: | ---: | ---: | :-: |"]
    for row, result in r["rows"].items():
        if "inference" in result:
            i = result["inference"]
            lines.append(f"| {row} | {i['step_s']['baseline']['mean'] * 1e3:.1f} ms | {_ratio(i['unfused_ratio'])} | "
                         f"{_ratio(i['fused_ratio'])} | {i['folded']} / {i['kept']} |")
    extras = r["rows"].get("atss", {}).get("extras")
    if extras:
        lines += ["", "ATSS at 16 images, what else might pay (step time against the default, channels-first with "
                  "cuDNN's autotuner): " + "; ".join(
                      f"{k}: channels-last x{v['channels_last_ratio']:.3f}, autotuner off x"
                      f"{v['no_cudnn_benchmark_ratio']:.3f}" for k, v in extras.items() if isinstance(v, dict))
                  + f"; the data preprocessor (host-to-device copy, normalisation, padding) takes "
                  f"{extras['preprocess_s'] * 1e3:.1f} ms, {extras['preprocess_share_of_bf16_step']:.1%} of a bf16 "
                  "step."]
    ray = r.get("ray_vs_plain")
    if ray:
        runs, inputs = ray["runs"], ray["inputs"]
        lines += ["", f"`yolor-ray train --gpu` (1 worker) vs a plain MMEngine Runner ({inputs['config']}, --small "
                  f"{inputs['image_size']} px, batch {inputs['batch_size']}, {inputs['images']} images): "
                  f"{runs['ray']['iteration_s']['mean'] * 1e3:.1f} vs {runs['plain']['iteration_s']['mean'] * 1e3:.1f}"
                  f" ms per iteration (x{ray['iteration_ratio']:.3f}); {runs['ray']['startup_s']:.1f} vs "
                  f"{runs['plain']['startup_s']:.1f} s to the first iteration."]
    step_met = r.get("met", {}).get("step", {})
    atss_met = r.get("met", {}).get("atss", {})
    lines += ["", f"Goals: YOLOR / baseline <= 1.02 per step (met by {sum(step_met.values())} of {len(step_met)} "
              f"cells); ATSS at 16 images >= 130 images/s (met: "
              f"{', '.join(f'{k} {_met(v)}' for k, v in atss_met.items()) or 'not measured'}). "
              f"1x on COCO: {r['inputs']['coco_1x_images']:,} images at the baseline's images/s. Whole run: "
              f"{r['elapsed_s']:.0f} s."]
    return lines


SECTIONS = (("ray_overhead", ray_overhead), ("implicit_cost", implicit_cost), ("scaling", scaling),
            ("asha_vs_exhaustive", asha), ("warm_start", warm_start), ("trial_overhead", trial_overhead),
            ("coco_scale", coco_scale), ("coco_eval", coco_eval), ("gpu", gpu))


def render() -> str:
    parts = []
    for name, section in SECTIONS:
        result = _load(name)
        parts.append("\n".join(section(result)) if result else f"### {name}\n\nNot measured yet: "
                     f"`python -m bench.{name}`.")
    return "\n\n".join(parts)


def main() -> int:
    text = README.read_text()
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        print(f"{README}: the {BEGIN} ... {END} markers are missing", file=sys.stderr)
        return 1
    README.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}")
    print(f"updated {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
