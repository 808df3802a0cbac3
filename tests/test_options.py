"""--cfg-options (new keys, built on the driver, applied last), randomness, the YOLOR
weight-decay recipe, the resume guard and --dry-run: all before Ray starts."""
from __future__ import annotations

import pytest
from mmengine.config import Config

from yolor_ray.train.spec import OptionError, RunSettings, Scaling, TrainSpec
from yolor_ray.tune.spec import SweepSpec

from support.paths import ATSS, REPO, YOLOR_ATSS
from support.runs import yolor_ray

# One torch thread: on 2 shared cores a pool of 2 spins against the other processes (conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

YOLOR_SPARSE = REPO / "configs" / "yolor" / "yolor_sparse-rcnn_r50_fpn_1x_coco.py"


def _prepare(shapes_dir, tmp_path, config=ATSS, **kwargs):
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run

    kwargs.setdefault("small", True)
    kwargs.setdefault("image_size", 64)
    scaling = Scaling(**{key: kwargs.pop(key) for key in ("num_workers", "use_gpu") if key in kwargs})
    return prepare_run(TrainSpec(config=config, data_root=shapes_dir, storage=StorageSpec(str(tmp_path / "results")),
                                 scaling=scaling, **kwargs))


def test_new_keys_under_existing_dicts_are_accepted_and_reach_the_parts(shapes_dir, tmp_path):
    from mmengine.optim import build_optim_wrapper

    from yolor_ray.train.driver import _torch_config
    from yolor_ray.train.run_config import build_model

    run = _prepare(shapes_dir, tmp_path, cfg_options={
        "val_evaluator.collect_device": "gpu", "optim_wrapper.accumulative_counts": 2,
        "env_cfg.dist_cfg.timeout": 600})
    assert run.cfg.val_evaluator.collect_device == "gpu"
    wrapper = build_optim_wrapper(build_model(run.cfg), run.cfg.optim_wrapper)
    assert wrapper._accumulative_counts == 2
    # Ray sets up the process group, so the timeout goes to Ray's TorchConfig
    assert _torch_config(run.cfg).timeout_s == 600
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("option, match", [
    ("optim_wrapper.loss_scale=dynamic", r"optim_wrapper does not build: TypeError: .*loss_scale"),
    ("val_evaluator.collect_device=tpu", r"val_evaluator.collect_device must be one of cpu, gpu, got 'tpu'"),
    ("env_cfg.dist_cfg.timeout=-5", r"env_cfg.dist_cfg.timeout must be a number of seconds > 0, got -5"),
    ("optim_wrapper.optimizer.betas=(0.9,0.99)", r"optim_wrapper does not build: TypeError: .*betas"),  # SGD's
    ("optim_wrapper.optimizer.momentumm=0.9", r"optim_wrapper.optimizer has no 'momentumm' \(did you mean 'momentum'"),
    ("model.bbox_head.num_clases=3", r"unknown config key 'model.bbox_head.num_clases'.*did you mean 'num_classes'"),
    ("optim_wrapper.nothere.x=1", r"unknown config key 'optim_wrapper.nothere.x': optim_wrapper has no 'nothere'"),
])
def test_bad_options_fail_on_the_driver(shapes_dir, tmp_path, option, match):
    from yolor_ray.config.load import ConfigError, parse_cfg_options

    with pytest.raises(ConfigError, match=match):
        _prepare(shapes_dir, tmp_path, cfg_options=parse_cfg_options([option]))


def test_loss_scale_is_accepted_with_amp(shapes_dir, tmp_path):
    run = _prepare(shapes_dir, tmp_path, amp="fp16", use_gpu=True, cfg_options={"optim_wrapper.loss_scale": 512.0})
    assert run.cfg.optim_wrapper.type == "AmpOptimWrapper" and run.cfg.optim_wrapper.loss_scale == 512.0


def test_user_options_win_over_small_epochs_batch_and_seed(shapes_dir, tmp_path):
    run = _prepare(shapes_dir, tmp_path, epochs=3, batch_size=2, seed=7, deterministic=True, cfg_options={
        "model.backbone.depth": 34, "train_cfg.max_epochs": 5, "train_dataloader.batch_size": 3,
        "randomness.diff_rank_seed": True})
    assert run.cfg.model.backbone.depth == 34  # --small alone sets 18
    assert run.cfg.train_cfg.max_epochs == 5 and run.cfg.train_dataloader.batch_size == 3
    assert run.cfg.randomness == dict(seed=7, deterministic=True, diff_rank_seed=True)
    plain = _prepare(shapes_dir, tmp_path, seed=3)
    assert plain.cfg.randomness == dict(seed=3, deterministic=False) and plain.cfg.model.backbone.depth == 18


def _decay_of(cfg: Config):
    """(implicit weight decays, other weight decays) of the optimizer built for cfg's model."""
    from mmengine.optim import build_optim_wrapper

    from yolor_ray.implicit import is_implicit_key
    from yolor_ray.train.run_config import build_model

    model = build_model(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    implicit, other = set(), set()
    seen = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            seen += 1
            (implicit if is_implicit_key(names[id(p)]) else other).add(group["weight_decay"])
    assert seen == len(names)
    return type(optimizer).__name__, implicit, other


# Sparse R-CNN's run (about 20 s of CPU, ATSS's 3 s) is slow.
@pytest.mark.parametrize("config, optimizer, decay", [
    (YOLOR_ATSS, "SGD", 1e-4), pytest.param(YOLOR_SPARSE, "AdamW", 1e-4, marks=pytest.mark.slow)])
def test_implicit_tensors_get_no_weight_decay(shapes_dir, tmp_path, config, optimizer, decay):
    run = _prepare(shapes_dir, tmp_path, config=config)
    assert _decay_of(run.cfg) == (optimizer, {0.0}, {decay})
    # configurable in the implicit settings: weight_decay=True gives them the optimizer's
    run = _prepare(shapes_dir, tmp_path, config=config, cfg_options={"model.implicit.weight_decay": True})
    assert _decay_of(run.cfg) == (optimizer, {decay}, {decay})


def test_baseline_optimizer_is_unchanged(shapes_dir, tmp_path):
    run = _prepare(shapes_dir, tmp_path)
    assert "constructor" not in run.cfg.optim_wrapper
    assert _decay_of(run.cfg) == ("SGD", set(), {1e-4})


def test_resume_with_another_scale_is_refused(shapes_dir, tmp_path):
    from yolor_ray.names import NameTakenError

    first = _prepare(shapes_dir, tmp_path, name="scaled", num_workers=2)
    (tmp_path / "results" / "scaled").mkdir(parents=True)
    (tmp_path / "results" / "scaled" / "run.json").write_text(first.manifest.to_json())
    assert _prepare(shapes_dir, tmp_path, name="scaled", num_workers=2).resuming
    with pytest.raises(NameTakenError, match=r"was started with --num-workers 2 \(now 1\); resume it with the same "
                                             r"options, or start a new run with another --name"):
        _prepare(shapes_dir, tmp_path, name="scaled", num_workers=1)
    with pytest.raises(NameTakenError, match=r"was started with CPU workers \(now --gpu\)"):
        _prepare(shapes_dir, tmp_path, name="scaled", num_workers=2, use_gpu=True)



@pytest.mark.parametrize("held", [None, "{}", '{"config": "c.py", "fing'])
def test_a_name_whose_folder_is_not_ours_is_refused_in_one_line(shapes_dir, tmp_path, held):
    """A run's, a sweep's and a reproduction's --name: a folder without our manifest, or with a
    file of that name that is not ours (another tool's run.json), is another --name to pick."""
    from yolor_ray.names import NameTakenError
    from yolor_ray.reproduce.plan import _check_name
    from yolor_ray.storage import StorageSpec, open_storage
    from yolor_ray.tune.sweep import _check_sweep_name

    taken = tmp_path / "results" / "taken"
    taken.mkdir(parents=True)
    for manifest in ("run.json", "sweep.json", "reproduce_plan.json"):
        if held is not None:
            (taken / manifest).write_text(held)
    why = {None: "no {file}", "{}": "without {fields}", '{"config": "c.py", "fing': "not JSON (Unterminated string"}
    start = f"{str(taken)!r} exists but is not a"
    with pytest.raises(NameTakenError) as raised:
        _prepare(shapes_dir, tmp_path, name="taken")
    assert str(raised.value).startswith(f"{start} yolor-ray run ("
                                        + why[held].format(file="run.json", fields="config, fingerprint"))
    assert str(raised.value).endswith("); pick another --name")
    storage = open_storage(StorageSpec(str(tmp_path / "results")))
    with pytest.raises(NameTakenError) as raised:
        _check_sweep_name(storage, "taken", "fingerprint")
    assert str(raised.value).startswith(f"{start} yolor-ray sweep ("
                                        + why[held].format(file="sweep.json", fields="config, fingerprint"))
    with pytest.raises(NameTakenError) as raised:
        _check_name(storage, "taken", {})
    assert str(raised.value).startswith(f"{start} yolor-ray reproduction ("
                                        + why[held].format(file="reproduce_plan.json", fields="rows, seeds, settings"))


@pytest.mark.subprocess
def test_dry_run_prints_the_plan_and_writes_nothing(shapes_dir, tmp_path):
    storage = tmp_path / "results"
    out = tmp_path / "merged.py"
    proc = yolor_ray("train", YOLOR_ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--num-workers", 2,
                     "--storage", storage, "--dry-run", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dry run: nothing was started or written" in proc.stdout
    assert "ATSS + YOLOR" in proc.stdout and "M parameters" in proc.stdout
    assert "2 x CPU" in proc.stdout and "batch 2 per worker = 4 in total" in proc.stdout
    assert "train:    16 images" in proc.stdout and "val:      8 images" in proc.stdout
    assert f"storage:  {storage}" in proc.stdout and "a new run" in proc.stdout
    assert Config.fromfile(str(out)).model.type == "YOLOR"
    assert not storage.exists()

    proc = yolor_ray("tune", ATSS, "--data", shapes_dir, "--small", "--image-size", 64, "--trials", 2,
                     "--storage", storage, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trials:   2 by" in proc.stdout and "first trial:" in proc.stdout and "# merged config" in proc.stdout
    assert not storage.exists()


@pytest.mark.parametrize("make", [
    lambda: TrainSpec(config="x.py", epochs=True),
    lambda: TrainSpec(config="x.py", batch_size=False),
    lambda: Scaling(num_workers=True),
    lambda: SweepSpec(config="x.py", train=RunSettings(), space={}, max_concurrent=True),
    lambda: SweepSpec(config="x.py", train=RunSettings(), space={}, seeds=1),
])
def test_a_bool_or_a_count_below_its_minimum_is_refused_by_the_one_validator(make):
    with pytest.raises(OptionError, match=r"must be (None or )?an int >= \d+.*, got (True|False|1)$"):
        make()


@pytest.mark.parametrize("size", [63, 1334])
def test_the_image_size_has_one_set_of_bounds_checked_where_the_spec_is_made(size):
    with pytest.raises(OptionError, match=rf"^RunSettings\(image_size\) must be an int in \[64, 1333\], got {size}$"):
        RunSettings(image_size=size)
