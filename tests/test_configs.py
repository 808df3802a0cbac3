"""The reference table's six baseline configs, and the small scale on every family."""
from pathlib import Path

import mmdet
import pytest
import torch
from mmengine.config import Config

from yolor_ray.config.edits import (
    collect_through_process_group,
    make_small,
    set_batch_size,
    set_epochs,
    use_batch_recipe,
    use_coco_folder,
    use_cudnn_autotuner_where_shapes_are_fixed,
)
from yolor_ray.config.load import ConfigError, load_config
from yolor_ray.config.parts import evaluators
from yolor_ray.data.coco import inspect_coco_split
from yolor_ray.train.run_config import build_model

from support.paths import BASELINES

# One torch thread: on 2 shared cores a pool of 2 spins against the other processes (conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

MMDET_CONFIGS = Path(mmdet.__file__).parent / ".mim" / "configs"
# Parameter counts measured with mmdet 3.3.0 (pinned in setup.py), in millions.
EXPECTED_M = {
    "faster-rcnn_r50_fpn_1x_coco": 41.75, "mask-rcnn_r50_fpn_1x_coco": 44.40,
    "fcos_r50-caffe_fpn_gn-head_1x_coco": 32.30, "atss_r50_fpn_1x_coco": 32.30,
    "sparse-rcnn_r50_fpn_1x_coco": 106.29, "sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco": 106.34,
}
FAMILIES = {  # one config per family for the training test
    "faster-rcnn": "faster-rcnn_r50_fpn_1x_coco", "mask-rcnn": "mask-rcnn_r50_fpn_1x_coco",
    "fcos": "fcos_r50-caffe_fpn_gn-head_1x_coco", "atss": "atss_r50_fpn_1x_coco",
    "sparse-rcnn": "sparse-rcnn_r50_fpn_1x_coco",
}


def test_all_six_seed_rows_exist():
    assert sorted(p.stem for p in BASELINES) == sorted(EXPECTED_M)


# Two full-size detectors each: ATSS's stays in the fast tier.
@pytest.mark.parametrize("path", [p if p.stem.startswith("atss") else pytest.param(p, marks=pytest.mark.slow)
                                  for p in BASELINES], ids=lambda p: p.stem)
def test_baseline_has_mmdet_parameter_count(path):
    ours = load_config(path)
    assert ours.custom_imports.imports == ["yolor_ray.registrations"]
    reference = next(MMDET_CONFIGS.rglob(f"{path.stem}.py"))
    theirs = Config.fromfile(str(reference))
    n_ours, n_theirs = (sum(p.numel() for p in build_model(c).parameters()) for c in (ours, theirs))
    assert n_ours == n_theirs
    assert round(n_ours / 1e6, 2) == EXPECTED_M[path.stem]


# FCOS and ATSS (5 s of CPU each) stay in the fast tier; the R-CNNs' epoch, 20 to 35 s, is slow.
@pytest.mark.parametrize("family", [f if f in ("fcos", "atss") else pytest.param(f, marks=pytest.mark.slow)
                                    for f in FAMILIES])
def test_family_trains_and_evaluates_small(family, shapes_dir, tmp_path):
    from mmengine.runner import Runner

    from yolor_ray.engine.runner import TextOnceConfig

    cfg = load_config(Path(__file__).parents[1] / "configs" / "baseline" / f"{FAMILIES[family]}.py")
    use_coco_folder(cfg, inspect_coco_split(shapes_dir, "train"), inspect_coco_split(shapes_dir, "val"))
    make_small(cfg, image_size=128)
    set_epochs(cfg, 1)
    cfg.train_dataloader.batch_size = 4
    cfg.work_dir = str(tmp_path)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    # After 4 iterations from scratch few scores pass the usual 0.05; keep every box so
    # that COCO evaluation really runs on predictions.
    test_cfg = cfg.model.test_cfg.get("rcnn", cfg.model.test_cfg)
    test_cfg.score_thr = 0.0
    runner = Runner.from_cfg(TextOnceConfig(cfg.to_dict()))  # the config's text formatted once, as workers do
    runner.train()  # one epoch, then its validation
    assert runner.iter == 4  # 16 images, batch 4, one epoch
    loss = runner.message_hub.get_scalar("train/loss").current()
    assert 0 < loss < 1e3
    # the COCO metrics of the epoch's validation (MMEngine's RuntimeInfoHook keeps them as val/...)
    assert 0.0 <= runner.message_hub.get_scalar("val/coco/bbox_mAP").current() <= 1.0
    if family == "mask-rcnn":
        assert 0.0 <= runner.message_hub.get_scalar("val/coco/segm_mAP").current() <= 1.0


def test_unknown_override_key_is_rejected_with_the_valid_ones():
    path = BASELINES[0]
    with pytest.raises(ConfigError,
                       match=r"unknown config key 'train_cfg.max_epoch'.*did you mean 'max_epochs'"):
        load_config(path, {"train_cfg.max_epoch": 3})


def test_typo_top_level_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(f"_base_ = '{BASELINES[0]}'\ntrian_cfg = dict(max_epochs=1)\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'trian_cfg'.*did you mean 'train_cfg'"):
        load_config(bad)


def test_bad_model_key_fails_on_the_driver(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(f"_base_ = '{BASELINES[0]}'\nmodel = dict(backbone=dict(deptth=18))\n")
    with pytest.raises(ConfigError, match="model config does not build.*deptth") as caught:
        build_model(load_config(bad))
    assert isinstance(caught.value.__cause__, TypeError)  # mmdet's own error stays as the cause


def test_a_bug_inside_a_model_while_it_builds_keeps_its_traceback():
    """Only a bad key or value is the user's mistake; anything else raised while mmdet builds
    the model is a bug and reaches the CLI as itself (errors.py), not as a one-line ConfigError."""
    from mmdet.registry import MODELS

    class BrokenHead(torch.nn.Module):
        def __init__(self, **kwargs):
            raise RuntimeError("a bug in the head's constructor")

    MODELS.register_module(name="BrokenHeadForTest", module=BrokenHead, force=True)
    cfg = load_config(BASELINES[0])
    cfg.model = dict(type="BrokenHeadForTest")
    with pytest.raises(RuntimeError, match="a bug in the head's constructor"):
        build_model(cfg)


def test_ranks_on_several_nodes_collect_through_the_process_group_unless_the_config_says():
    cfg = load_config(BASELINES[0])
    cfg.val_evaluator = [dict(type="CocoMetric", metric="bbox"), dict(type="CocoMetric", collect_device="cpu")]
    cfg.test_evaluator = dict(type="CocoMetric", metric="bbox")
    assert collect_through_process_group(cfg) == ["CocoMetric", "CocoMetric"]
    assert [e["collect_device"] for e in evaluators(cfg)] == ["gpu", "cpu", "gpu"]  # the user's 'cpu' wins


@pytest.mark.parametrize("batch_size, cpus, loaders", [(2, 1, 2), (2, 9, 2), (8, 5, 4), (16, 9, 8), (16, 4, 3)])
def test_the_batch_recipe_scales_loader_processes_with_the_batch_and_the_lr_with_the_total(batch_size, cpus, loaders):
    """docs/cluster.md's table: a loader process per 2 images, within the worker's CPUs, never
    fewer than the config's 2; the LR follows the total batch against the reference table's 16."""
    from yolor_ray.reference import baseline_config

    cfg = load_config(baseline_config("atss"))
    set_batch_size(cfg, batch_size)
    use_batch_recipe(cfg, cpus)
    assert cfg.train_dataloader.num_workers == loaders
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)


def test_the_dry_run_prints_the_lr_the_total_batch_scales_to():
    from yolor_ray.train.describe import effective_lr

    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(lr=0.02)), auto_scale_lr=dict(enable=True, base_batch_size=16)))
    assert effective_lr(cfg, 16) == "0.02"
    assert effective_lr(cfg, 2).startswith("0.0025 (the config's 0.02 for a total batch of 16, scaled to 2)")


def test_cudnn_autotuner_only_where_every_batch_has_one_shape():
    from yolor_ray.reference import baseline_config

    cfg = load_config(baseline_config("atss"))  # keep_ratio=True: shapes change with each image
    assert not use_cudnn_autotuner_where_shapes_are_fixed(cfg)
    cfg.train_dataloader.dataset.pipeline[2] = dict(type="Resize", scale=(640, 640), keep_ratio=False)
    assert use_cudnn_autotuner_where_shapes_are_fixed(cfg) and cfg.env_cfg.cudnn_benchmark
