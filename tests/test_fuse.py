"""Deploy fusion: folded models give the same outputs, on all five families."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from mmengine.config import Config

from yolor_ray.deploy.fuse import fuse_checkpoint
from yolor_ray.implicit import fuse_implicit, implicit_modules, is_implicit_key
from yolor_ray.implicit.attach import detach_implicit

from support.implicit import FAMILIES, batch, build, flat_outputs, small_cfg

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-4

# Placements that act where folding is not exact, per family (everything else must fold):
# add before the zero-padded 3x3 conv of the RPN / dense-head towers; the mask RoI
# features feed a padded 3x3 conv; Sparse R-CNN's RoI features feed a dynamic conv
# and its cls / reg branches start with bias-free linears (LayerNorm follows).
KEPT_WITH_EVERY_PLACEMENT = {
    "faster_rcnn": {"rpn_head.rpn_conv.implicit_in_add"},
    "mask_rcnn": {"rpn_head.rpn_conv.implicit_in_add", "roi_head.mask_roi_extractor.implicit_out_add"},
    "fcos": {"bbox_head.cls_convs.0.implicit_in_add", "bbox_head.reg_convs.0.implicit_in_add"},
    "atss": {"bbox_head.cls_convs.0.implicit_in_add", "bbox_head.reg_convs.0.implicit_in_add"},
    "sparse_rcnn": {f"roi_head.bbox_roi_extractor.{s}.implicit_out_add" for s in range(6)}
    | {f"roi_head.bbox_head.{s}.{b}.0.implicit_in_add" for s in range(6) for b in ("cls_fcs", "reg_fcs")},
}
PLACEMENTS = {
    "faster_rcnn": ["fpn", "rpn", "roi", "head_in"],
    "mask_rcnn": ["fpn", "rpn", "roi", "head_in"],
    "fcos": ["fpn", "head_in"],
    "atss": ["fpn", "head_in"],
    "sparse_rcnn": ["fpn", "roi", "head_in"],
}


def _perturb(model, scale=0.1, seed=0):
    """Move every implicit away from its init, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, implicit in implicit_modules(model):
            for p in implicit.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * scale)


def _without_implicit_hooks(model):
    plain = copy.deepcopy(model)
    for _, implicit in list(implicit_modules(plain)):
        for _, module in plain.named_modules():
            detach_implicit(module, implicit)
    return plain


def _assert_same_outputs(model, fused, data):
    with torch.no_grad():
        expected = flat_outputs(model, data)
        got = flat_outputs(fused, data)
        ignored = flat_outputs(_without_implicit_hooks(model), data)
    assert got.shape == expected.shape
    diff = (got - expected).abs().max().item()
    assert diff <= TOLERANCE, f"fused model differs by {diff:.3g}"
    # the comparison means something: dropping the implicits changes the outputs a lot more
    assert ignored.shape != expected.shape or (ignored - expected).abs().max().item() > 100 * TOLERANCE


def _fuse_and_compare(model, size: int, num_images: int = 2):
    """Perturb the implicit tensors, fuse a copy, check both give the same outputs."""
    _perturb(model)
    model.eval()
    data = batch(model, size=size, num_images=num_images, training=False)
    fused = copy.deepcopy(model)
    report = fuse_implicit(fused)
    _assert_same_outputs(model, fused, data)
    return fused, report


# Mask and Sparse R-CNN (2 to 5x the others) are slow; the fast tier keeps the other families and all placements.
@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_fused_model_equals_unfused(family):
    placements = [dict(name="pred", operators=["multiply", "add"])] + PLACEMENTS[family]
    model = build(small_cfg(family, dict(placements=placements)))
    fused, report = _fuse_and_compare(model, size=96)

    left = {name for name, _ in implicit_modules(fused)}
    assert left == KEPT_WITH_EVERY_PLACEMENT[family] == {e.path for e in report.kept}
    assert len(report.folded) + len(report.kept) == len(list(implicit_modules(model)))
    assert all(e.reason for e in report.kept) and all(e.into for e in report.folded)
    # nothing left at the outputs of the FPN, the predictions, the RPN conv, the box RoI features
    assert not any(name.startswith(("neck.", "rpn_head.rpn_cls", "rpn_head.rpn_reg")) or "fc_" in name
                   or "conv_logits" in name or name.endswith("out_mul") for name in left)
    # a second fuse finds nothing more to fold
    assert not fuse_implicit(fused).folded


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_default_variant_folds_completely(family):
    """fpn add + pred multiply (the reference table's variant): no implicit module left after fusion."""
    model = build(small_cfg(family))
    fused, report = _fuse_and_compare(model, size=64, num_images=1)
    assert not report.kept and not list(implicit_modules(fused))
    assert set(fused.state_dict()) == {k for k in model.state_dict() if not is_implicit_key(k)}


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_multiply_at_head_in_and_roi_folds(family):
    """Multiply before a layer scales its input channels: exact even before a padded conv."""
    placements = [dict(name=n, operators="multiply") for n in PLACEMENTS[family] if n in ("head_in", "roi")]
    model = build(small_cfg(family, dict(placements=placements)))
    _, report = _fuse_and_compare(model, size=64, num_images=1)
    dynamic = {f"roi_head.bbox_roi_extractor.{s}.implicit_out_mul" for s in range(6)}
    assert {e.path for e in report.kept} == (dynamic if family == "sparse_rcnn" else set())


def test_concat_and_escape_hatch_fold_exactly():
    """Concat before a 1x1 conv and a linear, add after RoI features read by a linear: exact."""
    model = build(small_cfg("faster_rcnn", dict(placements=[
        dict(name="roi", operators=["multiply", "add"]),
        dict(path="rpn_head.rpn_cls", side="input", operators=["concat"]),
        dict(path="roi_head.bbox_head.fc_cls", side="input", operators=["concat", "multiply"], modeling="nn"),
    ])))
    fused, report = _fuse_and_compare(model, size=96)
    assert not report.kept and not list(implicit_modules(fused))
    assert {e.into for e in report.folded if e.placement == "roi"} == {"roi_head.bbox_head.shared_fcs.0"}


def test_fuse_checkpoint_writes_a_deploy_checkpoint_and_config(tmp_path):
    from yolor_ray.models import build_model_from_checkpoint

    implicit = dict(placements=["fpn", "pred", "head_in"])  # head_in add stays: the deploy config keeps it
    model = build(small_cfg("atss", implicit))
    _perturb(model)
    cfg = Config(dict(model=small_cfg("atss", implicit), custom_imports=dict(imports=["yolor_ray.registrations"])))
    # what MMEngine's Runner writes: the state dict and the config text in meta
    torch.save(dict(state_dict=model.state_dict(), meta=dict(cfg=cfg.pretty_text, epoch=3,
                                                             dataset_meta=dict(classes=("a", "b", "c", "d")))),
               tmp_path / "checkpoint.pth")

    result = fuse_checkpoint(None, tmp_path, tmp_path / "deploy")  # a Ray checkpoint folder, cfg from meta
    assert result.checkpoint.is_file() and result.config.is_file() and result.report_file.is_file()
    assert {e["path"] for e in json.loads(result.report_file.read_text())["kept"]} == {
        "bbox_head.cls_convs.0.implicit_in_add", "bbox_head.reg_convs.0.implicit_in_add"}
    deploy_cfg = Config.fromfile(str(result.config))
    assert deploy_cfg.custom_imports.imports == ["yolor_ray.registrations"]  # meta.cfg's, kept
    assert deploy_cfg.model.type == "YOLOR"
    assert [p["path"] for p in deploy_cfg.model.implicit.placements] == ["bbox_head.cls_convs.0",
                                                                         "bbox_head.reg_convs.0"]
    deployed = build_model_from_checkpoint(deploy_cfg, result.checkpoint)  # strict load
    assert deployed.dataset_meta["classes"] == ("a", "b", "c", "d")
    model.eval()
    _assert_same_outputs(model, deployed, batch(model, size=64, num_images=1, training=False))

    # everything folds: the deploy config is the plain baseline detector
    model = build(small_cfg("atss"))
    _perturb(model)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / "yolor.pth")
    cfg = Config(dict(model=small_cfg("atss"), custom_imports=dict(imports=["yolor_ray.registrations"])))
    result = fuse_checkpoint(cfg, tmp_path / "yolor.pth", tmp_path / "deploy2")
    deploy_cfg = Config.fromfile(str(result.config))
    assert deploy_cfg.model.type == "ATSS" and "implicit" not in deploy_cfg.model
    deployed = build_model_from_checkpoint(deploy_cfg, result.checkpoint)
    model.eval()
    _assert_same_outputs(model, deployed, batch(model, size=64, num_images=1, training=False))


def test_fuse_checkpoint_rejects_what_it_cannot_fuse(tmp_path):
    baseline = build(small_cfg("atss", yolor=False))
    torch.save(dict(state_dict=baseline.state_dict()), tmp_path / "baseline.pth")
    yolor_cfg = Config(dict(model=small_cfg("atss")))
    with pytest.raises(ValueError, match="lacks the implicit parameters of this config"):
        fuse_checkpoint(yolor_cfg, tmp_path / "baseline.pth", tmp_path / "out")
    with pytest.raises(ValueError, match="has no implicit modules: nothing to fuse"):
        fuse_checkpoint(Config(dict(model=small_cfg("atss", yolor=False))), tmp_path / "baseline.pth",
                        tmp_path / "out")
    with pytest.raises(ValueError, match="holds no config"):
        fuse_checkpoint(None, tmp_path / "baseline.pth", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fuse_checkpoint(yolor_cfg, tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not found"):
        fuse_checkpoint(yolor_cfg, tmp_path / "missing.pth", tmp_path / "out")
