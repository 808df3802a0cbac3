"""Warm starts (--from BASELINE) before any cluster time: what BASELINE resolves to, the
fine-tuning schedule, --train implicit, and the one-line errors. The sweep that fine-tunes
from a trained baseline is in test_tune.py."""
from __future__ import annotations

import json

import pytest

from support.paths import ATSS, YOLOR_ATSS
from support.runs import yolor_ray


@pytest.fixture(scope="module")
def baseline_weights(tmp_path_factory, shapes_dir):
    """A small ATSS baseline's state dict (for the shapes classes) as an MMEngine checkpoint,
    and one with a key renamed (another architecture)."""
    import torch

    from yolor_ray.models import build_model
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import TrainSpec

    folder = tmp_path_factory.mktemp("baseline")
    cfg = prepare_run(TrainSpec(config=ATSS, data_root=shapes_dir, small=True, image_size=128,
                                storage=StorageSpec(str(folder / "unused")))).cfg
    state = build_model(cfg.model, "mmdet").state_dict()
    good, other = folder / "good.pth", folder / "other.pth"
    torch.save(dict(meta=dict(epoch=1), state_dict=state), good)
    renamed = dict(state)
    renamed["bbox_head.atss_cls.weight_renamed"] = renamed.pop("bbox_head.atss_cls.weight")
    torch.save(dict(meta=dict(epoch=1), state_dict=renamed), other)
    return good, other


def _spec(shapes_dir, tmp_path, **kwargs):
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.spec import TrainSpec, warm_start_of

    return TrainSpec(config=YOLOR_ATSS, data_root=shapes_dir, small=True, image_size=128, epochs=2,
                     storage=StorageSpec(str(tmp_path / "results")), warm_start=warm_start_of(**kwargs))


def test_a_run_folder_resolves_to_its_checkpoint_and_fine_tunes(baseline_weights, shapes_dir, tmp_path):
    from yolor_ray.config.edits import make_small
    from yolor_ray.config.load import load_config
    from yolor_ray.layout import RESULTS_FILE
    from yolor_ray.train.prepare import prepare_run

    good, _ = baseline_weights
    # A finished run folder, as a run leaves it: results.json naming its checkpoint folder.
    run = tmp_path / "runs" / "baseline"
    (run / "checkpoint_2026-01-01").mkdir(parents=True)
    (run / "checkpoint_2026-01-01" / "checkpoint.pth").write_bytes(good.read_bytes())
    (run / RESULTS_FILE).write_text(json.dumps(dict(
        name="baseline", location=str(run), config=str(ATSS), model="ATSS", metrics={}, history=[],
        checkpoint="/somewhere/else/baseline/checkpoint_2026-01-01")))  # moved since: found by folder name
    prepared = prepare_run(_spec(shapes_dir, tmp_path, from_baseline=str(run), train_params="implicit"))
    assert prepared.cfg.load_from == str(run / "checkpoint_2026-01-01" / "checkpoint.pth")
    assert "implicit keys at their init" in prepared.checks["from"]
    plain = load_config(YOLOR_ATSS)
    make_small(plain, 128)
    assert prepared.cfg.optim_wrapper.optimizer.lr == pytest.approx(0.1 * plain.optim_wrapper.optimizer.lr)
    assert prepared.cfg.param_scheduler == []
    assert prepared.cfg.optim_wrapper.paramwise_cfg.implicit_only is True
    assert prepared.manifest.warm_start == str(run)


def test_train_implicit_freezes_everything_else():
    from mmengine.optim import build_optim_wrapper

    from yolor_ray.config.edits import make_small, train_implicit_only, use_implicit_recipe
    from yolor_ray.config.load import load_config
    from yolor_ray.implicit import is_implicit_key
    from yolor_ray.models import build_model

    cfg = load_config(YOLOR_ATSS)
    make_small(cfg, 128)
    use_implicit_recipe(cfg)
    train_implicit_only(cfg)
    model = build_model(cfg.model, "mmdet")
    build_optim_wrapper(model, cfg.optim_wrapper)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(is_implicit_key(name) for name in trainable)
    assert len(trainable) == sum(is_implicit_key(name) for name, _ in model.named_parameters())


@pytest.mark.parametrize("case, message", [
    ("missing", "--from {path} not found"),
    ("unfinished", "--from {path}: that run has not finished (no results.json); finish it first or pass one "
                   "of its checkpoint files"),
    ("other", "--from {path} is not a baseline of this YOLOR: 2 key(s) beyond the implicit ones differ "
              "(bbox_head.atss_cls.weight, bbox_head.atss_cls.weight_renamed)"),
    ("no-from", "--train implicit fine-tunes a warm start: pass --from BASELINE"),
    ("not-a-run", "--from {path} is neither a finished run (no results.json) nor a checkpoint file"),
    ("no-checkpoint", "--from {path}: its results.json names no checkpoint"),
    ("bad-results", "--from {path}: its results.json is not a run's results: not JSON (Expecting value: "
                    "line 1 column 1 (char 0))"),
    ("bucket-only", "--from {path}: expected a run folder or a checkpoint file"),
])
def test_bad_baselines_are_refused_before_ray(baseline_weights, shapes_dir, tmp_path, case, message):
    from yolor_ray.errors import UserError
    from yolor_ray.train.prepare import prepare_run

    path = {"missing": tmp_path / "nothing", "other": baseline_weights[1], "no-from": None,
            "bucket-only": "s3://bucket"}.get(case, tmp_path / case)
    if case in ("unfinished", "not-a-run", "no-checkpoint", "bad-results"):
        path.mkdir()
        file, text = {"unfinished": ("run.json", "{}"), "not-a-run": ("notes.txt", "hello"),
                      "no-checkpoint": ("results.json", json.dumps(dict(name="r", location=str(path), config="c.py",
                                                                         model="ATSS", metrics={}, history=[]))),
                      "bad-results": ("results.json", "")}[case]
        (path / file).write_text(text)
    with pytest.raises(UserError) as raised:
        prepare_run(_spec(shapes_dir, tmp_path, train_params="implicit",
                          from_baseline=None if path is None else str(path)))
    assert str(raised.value) == message.format(path=repr(str(path)))


@pytest.mark.subprocess
def test_the_cli_says_it_in_one_line(baseline_weights, shapes_dir, tmp_path):
    proc = yolor_ray("train", YOLOR_ATSS, "--data", shapes_dir, "--small", "--image-size", 128, "--storage",
                     tmp_path / "results", "--from", baseline_weights[1], "--dry-run")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"yolor-ray: error: --from {str(baseline_weights[1])!r} is not a baseline of this YOLOR")
    assert "Traceback" not in proc.stderr and not (tmp_path / "results").exists()
