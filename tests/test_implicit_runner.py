"""A YOLOR config trains with MMEngine's own Runner, and loads a baseline checkpoint."""
from __future__ import annotations

import pytest
import torch

from yolor_ray.engine.checkpoint import load_checkpoint_file
from yolor_ray.implicit import implicit_modules, is_implicit_key, load_weights

from support.paths import REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def _small_yolor_cfg(shapes_dir, work_dir):
    from yolor_ray.config.edits import make_small, set_batch_size, set_epochs, use_coco_folder
    from yolor_ray.config.load import load_config
    from yolor_ray.data.coco import inspect_coco_split

    cfg = load_config(REPO / "configs" / "yolor" / "yolor_atss_r50_fpn_1x_coco.py")
    use_coco_folder(cfg, inspect_coco_split(shapes_dir, "train"), inspect_coco_split(shapes_dir, "val"))
    make_small(cfg, image_size=64)
    set_epochs(cfg, 1)
    set_batch_size(cfg, 4)
    cfg.work_dir = str(work_dir)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None  # training only: keep it short
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1)
    cfg.log_level = "WARNING"
    cfg.visualizer = dict(type="Visualizer", vis_backends=[])
    return cfg


def test_yolor_config_trains_with_mmengine_runner(shapes_dir, tmp_path):
    from mmengine.runner import Runner

    cfg = _small_yolor_cfg(shapes_dir, tmp_path / "yolor")
    assert cfg.model.type == "YOLOR" and cfg.model.detector == "ATSS"
    runner = Runner.from_cfg(cfg)
    start = {n: p.detach().clone() for n, p in runner.model.named_parameters() if is_implicit_key(n)}
    assert len(start) == 5 + 3  # five FPN levels, three ATSS prediction layers
    got_gradient = set()
    for name, p in runner.model.named_parameters():
        if name in start:
            p.register_hook(lambda g, name=name: got_gradient.add(name) if g.abs().max() > 0 else None)
    runner.train()
    assert got_gradient == set(start)
    # No weight decay on implicit tensors (YOLOR's recipe): only gradients move them, and in a
    # few warm-up steps at 64 px the FPN levels' (~1e-6) may stay under float32's step; the
    # prediction layers' move.
    moved = {n for n, p in runner.model.named_parameters() if n in start and not torch.equal(p.detach(), start[n])}
    assert {n for n in start if n.startswith("bbox_head.")} <= moved

    # a baseline checkpoint of the same detector loads through the Runner's load_from:
    # only the implicit keys are reported missing and keep their init
    checkpoint = torch.load(tmp_path / "yolor" / "epoch_1.pth", map_location="cpu", weights_only=False)
    baseline_state = {k: v for k, v in checkpoint["state_dict"].items() if not is_implicit_key(k)}
    torch.save(dict(state_dict=baseline_state), tmp_path / "baseline.pth")
    cfg = _small_yolor_cfg(shapes_dir, tmp_path / "from_baseline")
    cfg.load_from = str(tmp_path / "baseline.pth")
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()  # MMEngine loads non-strictly and logs the missing (implicit) keys
    model = runner.model
    assert all(torch.equal(model.state_dict()[k], v) for k, v in baseline_state.items())
    assert len(list(implicit_modules(model))) == 8
    # the same through our loader, which names what was missing
    report = load_weights(model, load_checkpoint_file(tmp_path / "baseline.pth"))
    assert len(report.missing_implicit) == 8 and not report.missing and not report.unexpected
