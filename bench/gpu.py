"""GPU benchmark: what the reference table's six rows cost to train and run on one GPU, and what Ray adds.

Per reference row (the reference table's ResNet-50 baseline and its YOLOR variant, shared detector weights,
random init, mmdet's ``demo_mm_inputs`` at 1333x800, 4 boxes an image): train steps
(forward, backward, SGD with the run's own optim wrapper: plain, MMEngine's fp16
``AmpOptimWrapper``, our ``BF16OptimWrapper``) in fp32, fp16 and bf16 at 2 and 16 images,
interleaved; peak memory of each step; the implicit tensors that learned (got finite,
non-zero gradients, the step after the timed ones); images/s and an
estimated share of the device's peak (conv and linear multiply-adds counted by hooks in one
training forward, x3 for the backward, against a measured matmul rate of the same dtype;
fp32 convolutions run as TF32, torch's default for cuDNN); fused and unfused inference
(batch 1, fp32). Then, at ATSS's 16 images, what else might pay: channels-last memory and
cuDNN's autotuner off, and the share of the step that the data preprocessor (the host-to-
device copy and normalisation) takes. Last, ``yolor-ray train --gpu`` with 1 worker against
a plain MMEngine Runner: seconds per iteration and to the first iteration.

    python -m bench.gpu [--rows atss ...] [--budget-s 420]     -> bench/results/gpu.json
    python -m bench.gpu --cpu-rehearsal --rows atss --no-ray    (the same code on a CPU, tiny)

Without a CUDA device it prints one line and exits 0 (CI); ``--cpu-rehearsal`` runs every
step of it on a CPU at 128 px (fp32 and bf16; fp16 autocast is CUDA only) to catch errors
before GPU time is spent, and writes ``bench/.work/gpu_rehearsal.json``, never ``gpu.json``.
It writes its result file after every row, so a run cut short leaves what it measured.
Needs: torch with CUDA, mmcv with the CUDA ops of the reference rows (nms, roi_align, sigmoid
focal loss), mmdet, mmengine, ray. Where Python and torch differ from our pins (an offline
machine with Python 3.12 and torch 2.11), ../shared/gpu/README.md builds and carries them;
it ran there in rehearsal (that bundle, on a CPU) with ``--cpu-rehearsal``.

Goals: YOLOR / baseline train step <= 1.02; ATSS at 16 images on one H200-class GPU >= 130
images/s (a reference row's 1x schedule in about 3 GPU-hours).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, RESULTS, WORK, log, positive_int, shapes, summary, timed_run, train_args, write_result
from bench.implicit_cost import batch, build_pair, paired_ratios, time_inference, time_train_steps


@dataclass(frozen=True)
class Target:
    device: str = "cuda"
    image: tuple[int, int] = (800, 1333)  # (height, width): the reference table's 1333x800 scale
    dtypes: tuple[str, ...] = ("fp32", "fp16", "bf16")
    batches: tuple[int, ...] = (16, 2)
    # untimed steps first: None, 2 for a big batch and 3 (and twice the steps) for a small one,
    # whose steps are short enough for clocks and the allocator to settle late; a rehearsal needs 1
    warmup: int | None = None
    result: str = "gpu"
    folder: Path = RESULTS

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


REHEARSAL = Target(device="cpu", image=(64, 64), dtypes=("fp32", "bf16"), batches=(2, 1), warmup=1,
                   result="gpu_rehearsal", folder=WORK)
COCO_1X_IMAGES = 12 * 117_266  # 12 epochs of train2017's images with a box (mmdet's filter_empty_gt)
STEP_GOAL, ATSS_GOAL = 1.02, 130.0
SUBPROCESS_RESERVE_S = 150  # what the Ray-vs-plain pair needs at the end


def skip_line() -> str | None:
    try:
        import torch
    except ImportError:
        return "bench.gpu: skipped: torch is not installed"
    if not torch.cuda.is_available():
        return f"bench.gpu: skipped: no CUDA device here (torch {torch.__version__}, CUDA build {torch.version.cuda})"
    return None


def matmul_rates(target: Target) -> dict[str, float]:
    """Measured dense matmul rate (TFLOP/s) per dtype: the 'peak' that shares are taken of."""
    import torch

    rates, n = {}, 8192 if target.device == "cuda" else 512
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                              ("fp16", torch.float16, False), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device=target.device, dtype=dtype)
        b = torch.randn(n, n, device=target.device, dtype=dtype)
        for _ in range(3):
            a @ b
        target.sync()
        start, reps = time.perf_counter(), 20
        for _ in range(reps):
            a @ b
        target.sync()
        rates[name] = 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False  # torch's default
    return rates


def forward_macs(model, data) -> int:
    """Multiply-adds of the convs and linear layers in one training forward (loss mode)."""
    import torch

    total = [0]

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            total[0] += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * \
                module.kernel_size[1]
        else:
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            model.train()
            batch_in = model.data_preprocessor(data, True)
            model.loss(batch_in["inputs"], batch_in["data_samples"])
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def wrapper_for(dtype: str, model):
    import torch
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from yolor_ray.engine.optim import BF16OptimWrapper

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    if dtype == "fp16":
        return AmpOptimWrapper(loss_scale="dynamic", optimizer=optimizer)
    return (BF16OptimWrapper if dtype == "bf16" else OptimWrapper)(optimizer=optimizer)


def state_bytes(model, wrapper) -> int:
    """Bytes a model's training state holds on the GPU: parameters, gradients, optimizer state."""
    import torch

    tensors = [p for p in model.parameters()] + [p.grad for p in model.parameters() if p.grad is not None]
    for state in wrapper.optimizer.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


class ImplicitGradients:
    """Which implicit tensors of a model get a finite, non-zero gradient while it is open (a
    tensor's value can stay put at a tiny LR: an ImplicitM near 1 absorbs updates under fp32's
    epsilon, so a changed value is not the test of learning)."""

    def __init__(self, model):
        from yolor_ray.implicit import is_implicit_key

        self.seen: dict[str, bool] = {}
        self.handles = [p.register_hook(self._recorder(n)) for n, p in model.named_parameters()
                        if is_implicit_key(n) and p.requires_grad]

    def _recorder(self, name: str):
        def record(grad):
            finite_nonzero = bool(grad.isfinite().all()) and bool(grad.abs().sum() > 0)
            self.seen[name] = self.seen.get(name, False) or finite_nonzero
        return record

    def close(self) -> str:
        for handle in self.handles:
            handle.remove()
        return f"{sum(self.seen.values())}/{len(self.handles)}"


def peak_step_gb(models: dict, wrappers: dict, data, target: Target) -> dict[str, float | None]:
    """Peak memory of one train step of each model, less the other model's resident state."""
    import torch

    peaks = {}
    for name, model in models.items():
        others = sum(state_bytes(m, wrappers[n]) for n, m in models.items() if n != name)
        step_data = copy.deepcopy(data)
        target.sync()
        if target.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        model.train_step(step_data, wrappers[name])
        target.sync()
        peaks[name] = (torch.cuda.max_memory_allocated() - others) / 1e9 if target.device == "cuda" else None
    return peaks


def skipped_steps(wrapper) -> int | None:
    return getattr(wrapper, "skipped_steps", None)


def train_cell(models: dict, cfg, dtype: str, images: int, steps: int, warmup: int, target: Target) -> dict:
    """One (row, dtype, images) cell: interleaved train steps of baseline and YOLOR."""
    data = batch(cfg, target.image, images, seed=images)
    wrappers = {name: wrapper_for(dtype, model) for name, model in models.items()}
    seconds = time_train_steps(models, data, steps, warmup, wrappers=wrappers, sync=target.sync)
    peaks = peak_step_gb(models, wrappers, data, target)  # after the warm-up: cuDNN's autotuning is over
    gradients = ImplicitGradients(models["yolor"])  # one more step, untimed: the hooks cost syncs
    models["yolor"].train_step(copy.deepcopy(data), wrappers["yolor"])
    learned = gradients.close()
    step = {name: statistics.fmean(v) for name, v in seconds.items()}
    cell = dict(step_s={k: summary(v) for k, v in seconds.items()}, ratio=paired_ratios(seconds, "yolor", "baseline"),
                images_per_s={k: images / v for k, v in step.items()}, peak_gb=peaks,
                implicit_learned=learned,
                skipped_steps={k: skipped_steps(w) for k, w in wrappers.items()})
    if dtype == "fp16":
        cell["loss_scale"] = wrappers["yolor"].loss_scaler.get_scale()
    for wrapper in wrappers.values():
        wrapper.optimizer.zero_grad(set_to_none=True)
    return cell


def extras(models: dict, cfg, steps: int, warmup: int, target: Target) -> dict:
    """At ATSS's largest batch: channels-last, cuDNN's autotuner off, the data preprocessor's share."""
    import torch

    images = target.batches[0]
    data = batch(cfg, target.image, images, seed=images)
    model = models["baseline"]
    out = {}
    for dtype in target.dtypes[1:]:  # the low precisions
        wrappers = {"baseline": wrapper_for(dtype, model)}

        def timed():
            return statistics.fmean(time_train_steps({"baseline": model}, data, steps, warmup, wrappers=wrappers,
                                                     sync=target.sync)["baseline"])

        model.to(memory_format=torch.channels_last)
        channels_last = timed()
        model.to(memory_format=torch.contiguous_format)
        torch.backends.cudnn.benchmark = False
        no_autotune = timed()
        torch.backends.cudnn.benchmark = True
        default = timed()
        out[dtype] = dict(step_s=default, channels_last_step_s=channels_last, no_cudnn_benchmark_step_s=no_autotune,
                          channels_last_ratio=channels_last / default, no_cudnn_benchmark_ratio=no_autotune / default)
    seconds = []
    for _ in range(warmup + steps):
        step_data = copy.deepcopy(data)
        target.sync()
        start = time.perf_counter()
        model.data_preprocessor(step_data, True)
        target.sync()
        seconds.append(time.perf_counter() - start)
    out["preprocess_s"] = statistics.fmean(seconds[warmup:])
    out["preprocess_share_of_bf16_step"] = out["preprocess_s"] / out["bf16"]["step_s"]
    return out


def inference(models: dict, cfg, repeats: int, target: Target) -> dict:
    from yolor_ray.implicit.fuse import fuse_implicit

    fused = copy.deepcopy(models["yolor"])
    report = fuse_implicit(fused.eval())
    seconds = time_inference(dict(baseline=models["baseline"], yolor_unfused=models["yolor"], yolor_fused=fused),
                             batch(cfg, target.image, 1, seed=1), repeats,
                             warmup=2 if target.warmup is None else target.warmup, sync=target.sync)
    return dict(step_s={k: summary(v) for k, v in seconds.items()},
                unfused_ratio=paired_ratios(seconds, "yolor_unfused", "baseline"),
                fused_ratio=paired_ratios(seconds, "yolor_fused", "baseline"),
                folded=len(report.folded), kept=len(report.kept))


def row_results(row: str, args, rates: dict, deadline: float, target: Target) -> dict:
    import torch

    from yolor_ray.reference import REFERENCE_ROWS

    baseline, yolor, cfg = build_pair(REFERENCE_ROWS[row])
    models = {"baseline": baseline.to(target.device), "yolor": yolor.to(target.device)}
    macs = forward_macs(models["baseline"], batch(cfg, target.image, 2, seed=0)) / 2
    result = dict(train_flop_per_image=6 * macs, cells={})
    for images in target.batches:
        for dtype in target.dtypes:
            key = f"{dtype}@{images}"
            if time.perf_counter() > deadline:
                result["cells"][key] = dict(error="not run: over the time budget")
                continue
            steps, warmup = (args.steps, 2) if images > 2 else (2 * args.steps, 3)
            if target.warmup is not None:
                steps, warmup = args.steps, target.warmup
            try:
                cell = train_cell(models, cfg, dtype, images, steps, warmup, target)
            except Exception as error:  # a missing kernel or out of memory: reported, the others still run
                result["cells"][key] = dict(error=f"{type(error).__name__}: {str(error)[:300]}")
                log(f"{row} {key}: {result['cells'][key]['error']}")
                if target.device == "cuda":
                    torch.cuda.empty_cache()
                continue
            peak = rates["tf32" if dtype == "fp32" else dtype]
            cell["share_of_peak"] = result["train_flop_per_image"] * cell["images_per_s"]["baseline"] / (peak * 1e12)
            cell["gpu_hours_1x"] = COCO_1X_IMAGES / cell["images_per_s"]["baseline"] / 3600
            result["cells"][key] = cell
            memory = cell["peak_gb"]["baseline"]
            log(f"{row} {key}: {cell['step_s']['baseline']['mean'] * 1e3:.0f} ms/step baseline "
                f"({cell['images_per_s']['baseline']:.1f} images/s, {cell['share_of_peak']:.1%} of peak"
                f"{f', {memory:.1f} GB' if memory is not None else ''}), YOLOR x{cell['ratio']['mean']:.3f}, "
                f"implicit learned {cell['implicit_learned']}, skipped {cell['skipped_steps']}")
    if time.perf_counter() < deadline:
        result["inference"] = inference(models, cfg, args.repeats, target)
        log(f"{row} inference: unfused x{result['inference']['unfused_ratio']['mean']:.3f}, "
            f"fused x{result['inference']['fused_ratio']['mean']:.3f}")
    if row == "atss" and time.perf_counter() < deadline:
        result["extras"] = extras(models, cfg, args.steps, 2 if target.warmup is None else target.warmup, target)
        log(f"atss extras: {result['extras']}")
    del models, baseline, yolor
    if target.device == "cuda":
        torch.cuda.empty_cache()
    return result


def ray_vs_plain(args, target: Target) -> dict:
    """``yolor-ray train`` (1 worker) and a plain Runner: the same config, data and batch."""
    from bench.common import fresh_scratch, iteration_seconds

    config = REPO / "bench" / "configs" / "atss_timed.py"
    data = shapes(target.result, args.ray_images, 8, args.ray_image_size)
    scratch = fresh_scratch(target.result)
    runs = {}
    for variant in ("plain", "ray"):
        command = train_args(config, data, image_size=args.ray_image_size, batch_size=args.ray_batch_size, epochs=1,
                             num_workers=1, threads=args.threads, storage=scratch / "storage", name=variant)
        if target.device == "cuda":
            command.append("--gpu")
        if variant == "plain":
            command = [sys.executable, "-m", "bench.plain_runner", *command[3:]]
        run = timed_run(command, args.threads, scratch, variant)
        seconds = iteration_seconds(run.stamps, warmup=5)
        runs[variant] = dict(startup_s=round(run.startup_s, 2), wall_s=round(run.wall_s, 2),
                             iteration_s=summary(seconds))
        log(f"{variant}: {statistics.fmean(seconds) * 1e3:.1f} ms/iter, {run.startup_s:.1f} s to the first iteration")
    return dict(runs=runs, iteration_ratio=runs["ray"]["iteration_s"]["mean"] / runs["plain"]["iteration_s"]["mean"],
                startup_extra_s=runs["ray"]["startup_s"] - runs["plain"]["startup_s"],
                inputs=dict(config=str(config.relative_to(REPO)), small=True, images=args.ray_images,
                            image_size=args.ray_image_size, batch_size=args.ray_batch_size, threads=args.threads))


def main(argv: list[str] | None = None) -> int:
    from yolor_ray.reference import REFERENCE_ROWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(REFERENCE_ROWS), choices=list(REFERENCE_ROWS))
    parser.add_argument("--steps", type=positive_int, default=4, help="timed steps at 16 images (twice as many at 2)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed inference passes per model")
    parser.add_argument("--budget-s", type=positive_int, default=420,
                        help="seconds for the whole run; cells past it are reported as not run (default 420)")
    parser.add_argument("--ray-images", type=positive_int, default=192)
    parser.add_argument("--ray-image-size", type=positive_int, default=512)
    parser.add_argument("--ray-batch-size", type=positive_int, default=4)
    parser.add_argument("--threads", type=positive_int, default=4, help="CPUs of the Ray worker / plain Runner")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray-vs-plain pair")
    parser.add_argument("--cpu-rehearsal", action="store_true", help="run it all on a CPU, tiny (no GPU figures)")
    args = parser.parse_args(argv)
    target = REHEARSAL if args.cpu_rehearsal else Target()
    skipped = None if args.cpu_rehearsal else skip_line()
    if skipped:
        print(skipped)
        return 0

    import torch
    from mmengine.logging import MMLogger

    started = time.perf_counter()
    deadline = started + args.budget_s - (0 if args.no_ray else SUBPROCESS_RESERVE_S)
    MMLogger.get_instance("bench", log_level="WARNING")
    torch.backends.cudnn.benchmark = True  # fixed shapes here (extras measure it off)
    rates = matmul_rates(target)
    name = torch.cuda.get_device_name(0) if target.device == "cuda" else "CPU (rehearsal)"
    memory_gb = torch.cuda.get_device_properties(0).total_memory / 1e9 if target.device == "cuda" else None
    log(f"{name}: matmul TFLOP/s {', '.join(f'{k} {v:.2f}' for k, v in rates.items())}")
    payload = dict(question="per reference row on one GPU: train-step time, memory and images/s by precision and "
                            "batch, YOLOR / baseline, fused inference; yolor-ray train vs a plain Runner",
                   inputs=dict(**vars(args), image=target.image, batches=target.batches, dtypes=target.dtypes,
                               weights="random (seeded)", data="mmdet demo_mm_inputs, 4 boxes an image",
                               coco_1x_images=COCO_1X_IMAGES),
                   device=dict(name=name, matmul_tflops=rates, memory_gb=memory_gb),
                   goals=dict(step=f"yolor / baseline <= {STEP_GOAL}",
                              atss=f"ATSS at 16 images >= {ATSS_GOAL} images/s"),
                   rows={})
    for row in args.rows:
        payload["rows"][row] = row_results(row, args, rates, deadline, target)
        payload["elapsed_s"] = time.perf_counter() - started
        write_result(target.result, payload, target.folder)
    if not args.no_ray:
        payload["ray_vs_plain"] = ray_vs_plain(args, target)
    atss = payload["rows"].get("atss", {}).get("cells", {})
    payload["met"] = dict(
        step={f"{row}/{key}": cell["ratio"]["mean"] <= STEP_GOAL for row, r in payload["rows"].items()
              for key, cell in r["cells"].items() if "ratio" in cell},
        atss={key: cell["images_per_s"]["baseline"] >= ATSS_GOAL for key, cell in atss.items()
              if key.endswith("@16") and "images_per_s" in cell})
    payload["elapsed_s"] = time.perf_counter() - started
    write_result(target.result, payload, target.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
