"""Implicit cost per family: train-step time YOLOR / baseline, parameters added, and
inference latency of the baseline, YOLOR unfused and YOLOR fused (``fuse_implicit``).

The reference table's ResNet-50 models as configured (configs/baseline and configs/yolor, the
default implicit variant), one process, random weights (no downloads), batches from
mmdet's own ``demo_mm_inputs``. The baseline and YOLOR models share their detector
weights, so their detections (and NMS work) match. Timed steps interleave the variants,
warm-up steps are left out.

    python -m bench.implicit_cost [--steps 5] [--image-size 256]   -> bench/results/implicit_cost.json

Goals: train step YOLOR / baseline <= 1.02; inference fused / baseline <= 1.01.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

from bench.common import REPO, alternate, log, ratio_summary, summary, write_result

FAMILIES = {
    "Faster R-CNN": "faster-rcnn_r50_fpn_1x_coco.py",
    "Mask R-CNN": "mask-rcnn_r50_fpn_1x_coco.py",
    "FCOS": "fcos_r50-caffe_fpn_gn-head_1x_coco.py",
    "ATSS": "atss_r50_fpn_1x_coco.py",
    "Sparse R-CNN": "sparse-rcnn_r50_fpn_1x_coco.py",
}
TRAIN_GOAL, FUSED_GOAL = 1.02, 1.01


def build_pair(file_name: str):
    """(baseline, YOLOR) models of one reference row, the baseline holding the YOLOR model's detector weights."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config

    import yolor_ray.registrations  # noqa: F401  (type='YOLOR' and our parts)

    def build(path):
        cfg = Config.fromfile(str(path))
        cfg.model.backbone.init_cfg = None  # the torchvision download is not needed to time a step
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        if hasattr(getattr(model, "rpn_head", None), "num_proposals"):  # Sparse R-CNN: boxes start as the image
            model.rpn_head.init_weights()
        return model, cfg

    yolor, cfg = build(REPO / "configs" / "yolor" / f"yolor_{file_name}")
    baseline, _ = build(REPO / "configs" / "baseline" / file_name)
    missing, unexpected = baseline.load_state_dict(yolor.state_dict(), strict=False)
    if missing or not all("implicit" in key for key in unexpected):
        raise RuntimeError(f"{file_name}: YOLOR and baseline differ beyond the implicit tensors: "
                           f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    return baseline, yolor, cfg


def batch(cfg, size: int | tuple[int, int], images: int, seed: int):
    """mmdet's ``demo_mm_inputs``: ``images`` random images of ``size`` (square, or (height, width)),
    4 boxes each (and masks where the config has a mask head)."""
    import torch
    from mmdet.testing import demo_mm_inputs

    from yolor_ray.config.parts import has_mask_head

    height, width = (size, size) if isinstance(size, int) else size
    torch.manual_seed(seed)
    return demo_mm_inputs(batch_size=images, image_shapes=[(3, height, width)] * images, num_items=[4] * images,
                          num_classes=80, with_mask=has_mask_head(cfg))


def no_sync() -> None:
    """On a CPU a step's work is done when it returns; a GPU's is when ``torch.cuda.synchronize`` returns."""


def time_train_steps(models: dict, data, steps: int, warmup: int, wrappers: dict | None = None,
                     sync=no_sync) -> dict[str, list[float]]:
    """Seconds per ``train_step`` (forward, backward, optimizer step) of each model, interleaved;
    ``wrappers``: each model's MMEngine optim wrapper (default: plain SGD). The batch is copied
    before the clock starts (a data loader hands each step a batch of its own)."""
    import torch
    from mmengine.optim import OptimWrapper

    for model in models.values():
        model.train()
    wrappers = wrappers or {name: OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
                            for name, model in models.items()}
    seconds = {name: [] for name in models}
    names = tuple(models)
    for step in range(warmup + steps):
        for name in alternate(step, names):
            step_data = copy.deepcopy(data)
            sync()
            start = time.perf_counter()
            models[name].train_step(step_data, wrappers[name])
            sync()
            if step >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds


def time_inference(models: dict, data, repeats: int, warmup: int, sync=no_sync) -> dict[str, list[float]]:
    """Seconds per ``test_step`` (preprocess, predict, post-process) of each model, interleaved."""
    import torch

    seconds = {name: [] for name in models}
    names = tuple(models)
    for model in models.values():
        model.eval()
    with torch.no_grad():
        for rep in range(warmup + repeats):
            for name in alternate(rep, names):
                step_data = copy.deepcopy(data)
                sync()
                start = time.perf_counter()
                models[name].test_step(step_data)
                sync()
                if rep >= warmup:
                    seconds[name].append(time.perf_counter() - start)
    return seconds


def paired_ratios(seconds: dict, num: str, den: str) -> dict:
    return ratio_summary([a / b for a, b in zip(seconds[num], seconds[den])])


def main(argv: list[str] | None = None) -> int:
    import torch
    from mmengine.logging import MMLogger

    from yolor_ray.implicit.attach import count_implicit_params
    from yolor_ray.implicit.fuse import fuse_implicit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed train steps per model (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="timed inference passes per model (default 10)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2, help="images per train step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    MMLogger.get_instance("bench", log_level="WARNING")  # parameter-init chatter off

    families = {}
    for family in args.families:
        baseline, yolor, cfg = build_pair(FAMILIES[family])
        params = dict(baseline=sum(p.numel() for p in baseline.parameters()),
                      yolor=sum(p.numel() for p in yolor.parameters()), implicit=count_implicit_params(yolor))
        train = time_train_steps(dict(baseline=baseline, yolor=yolor), batch(cfg, args.image_size, args.batch_size, 0),
                                 args.steps, warmup=2)
        fused = copy.deepcopy(yolor)
        report = fuse_implicit(fused.eval())
        infer = time_inference(dict(baseline=baseline, yolor_unfused=yolor, yolor_fused=fused),
                               batch(cfg, args.image_size, 1, 1), args.repeats, warmup=1)
        result = dict(
            params=params, added_params=params["yolor"] - params["baseline"],
            added_pct=100.0 * (params["yolor"] - params["baseline"]) / params["baseline"],
            fused=dict(folded=len(report.folded), kept=len(report.kept)),
            train_step_s={k: summary(v) for k, v in train.items()},
            train_ratio=paired_ratios(train, "yolor", "baseline"),
            inference_s={k: summary(v) for k, v in infer.items()},
            unfused_ratio=paired_ratios(infer, "yolor_unfused", "baseline"),
            fused_ratio=paired_ratios(infer, "yolor_fused", "baseline"))
        families[family] = result
        log(f"{family}: +{result['added_params']:,} params ({result['added_pct']:.4f}%); train step "
            f"{statistics.fmean(train['baseline']):.2f} s -> YOLOR x{result['train_ratio']['mean']:.3f}; inference "
            f"{statistics.fmean(infer['baseline']):.3f} s -> unfused x{result['unfused_ratio']['mean']:.3f}, "
            f"fused x{result['fused_ratio']['mean']:.3f} ({len(report.folded)} folded, {len(report.kept)} kept)")
        del baseline, yolor, fused

    write_result("implicit_cost", dict(
        question="what the default YOLOR variant costs per family: train step, parameters, inference (fused)",
        inputs=dict(**vars(args), weights="random (seeded), detector weights shared", data="mmdet demo_mm_inputs",
                    train_warmup=2, inference_warmup=1, inference_batch=1),
        families=families,
        goals=dict(train=f"yolor / baseline <= {TRAIN_GOAL}", fused=f"fused / baseline <= {FUSED_GOAL}"),
        met=dict(train={f: r["train_ratio"]["mean"] <= TRAIN_GOAL for f, r in families.items()},
                 fused={f: r["fused_ratio"]["mean"] <= FUSED_GOAL for f, r in families.items()})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
