"""Placements resolved by structure on families beyond the reference table: sites, a train step, fusion.

The reference table's five families plus GFL, TOOD, YOLOX, DINO (and Deformable DETR, whose
prediction layers are shared by every decoder layer), at a small scale from mmdet's
own configs: ResNet-18 (YOLOX-tiny's own CSPDarknet), two transformer layers, 64 px
images. ``make coverage`` runs the same checks (support.implicit_checks) on every family
folder of mmdet's configs at full scale (scripts/implicit_coverage.py, the table in
docs/implicit.md).
"""
from __future__ import annotations

import copy
from functools import lru_cache

import pytest

from yolor_ray.implicit import (
    PlacementSpec,
    count_implicit_params,
    fuse_implicit,
    implicit_modules,
    is_implicit_key,
    resolution_of,
    resolve_placement,
)

from support.implicit import quiet_mmengine, small_cfg
from support.implicit_checks import build_detector, compare_fused, mmdet_configs, model_cfg_of, train_step

pytestmark = pytest.mark.usefixtures("one_thread")
TOLERANCE = 1e-4
SIZE = 64
SIZES = {"yolox": 128}  # YOLOX's stride-32 level needs more than 2 x 2 cells to get a positive
REFERENCE_FAMILIES = ("faster_rcnn", "mask_rcnn", "fcos", "atss", "sparse_rcnn")
MMDET_FAMILIES = {
    "gfl": "gfl/gfl_r50_fpn_1x_coco.py",
    "tood": "tood/tood_r50_fpn_1x_coco.py",
    "yolox": "yolox/yolox_tiny_8xb8-300e_coco.py",
    "dino": "dino/dino-4scale_r50_8xb2-12e_coco.py",
    "deformable_detr": "deformable_detr/deformable-detr_r50_16xb2-50e_coco.py",
}
FAMILIES = REFERENCE_FAMILIES + tuple(MMDET_FAMILIES)
LEVELS = [f"neck.fpn_convs.{i}" for i in range(5)]
# family -> placement -> the sites the default variant's placements resolve to
EXPECTED = {
    "gfl": {"fpn": LEVELS, "pred": ["bbox_head.gfl_cls", "bbox_head.gfl_reg"]},
    "tood": {"fpn": LEVELS, "pred": ["bbox_head.tood_cls", "bbox_head.tood_reg", "bbox_head.cls_prob_module.2",
                                     "bbox_head.reg_offset_module.2"]},
    "yolox": {"fpn": [f"neck.out_convs.{i}" for i in range(3)],
              "pred": [f"bbox_head.multi_level_conv_{b}.{i}" for b in ("cls", "reg", "obj") for i in range(3)]},
    # two decoder layers and the encoder's proposals (DINO is two-stage): three of each branch
    "dino": {"fpn": ["neck.convs.0", "neck.convs.1", "neck.convs.2", "neck.extra_convs.0"],
             "pred": [f"bbox_head.cls_branches.{i}" for i in range(3)]
             + [f"bbox_head.reg_branches.{i}.4" for i in range(3)]},
    # no box refinement: one fc_cls and one reg branch shared by both decoder layers, so one site each
    "deformable_detr": {"fpn": ["neck.convs.0", "neck.convs.1", "neck.convs.2", "neck.extra_convs.0"],
                        "pred": ["bbox_head.cls_branches.0", "bbox_head.reg_branches.0.4"]},
}
EXPECTED_HEAD_IN = {
    "gfl": ["bbox_head.cls_convs.0", "bbox_head.reg_convs.0"],
    "tood": ["bbox_head.inter_convs.0"],
    "yolox": [f"bbox_head.multi_level_{b}_convs.{i}.0" for b in ("cls", "reg") for i in range(3)],
    "dino": [f"bbox_head.reg_branches.{i}.0" for i in range(3)],
    "deformable_detr": ["bbox_head.reg_branches.0.0"],
}
# fpn levels made after a norm / activation: kept by fusion, with the reason
KEPT_FPN = {"yolox": ("BatchNorm2d and Swish", 3), "dino": ("GroupNorm", 4), "deformable_detr": ("GroupNorm", 4)}



def _small(family: str, model: dict) -> dict:
    """ResNet-18 (YOLOX-tiny keeps its own backbone), 2 transformer layers, few queries."""
    model = copy.deepcopy(model)
    if family != "yolox":
        model["backbone"].update(depth=18, init_cfg=None)
    if family in ("gfl", "tood"):
        model["neck"]["in_channels"] = [64, 128, 256, 512]
    if family in ("dino", "deformable_detr"):
        model["neck"]["in_channels"] = [128, 256, 512]
        model["num_queries"] = 30
        for part in ("encoder", "decoder"):
            model[part]["num_layers"] = 2
            model[part]["layer_cfg"]["ffn_cfg"]["feedforward_channels"] = 256
    if family == "dino":
        model["dn_cfg"]["group_cfg"]["num_dn_queries"] = 20
    if "test_cfg" in model and "max_per_img" in model["test_cfg"]:
        model["test_cfg"]["max_per_img"] = 20
    return model


@lru_cache(maxsize=None)
def _baseline_cfg(family: str) -> dict:
    if family in REFERENCE_FAMILIES:
        return small_cfg(family, yolor=False)
    return _small(family, model_cfg_of(mmdet_configs() / MMDET_FAMILIES[family]))


def _build(family: str, implicit: dict | None = None):
    """The family's small detector, with ``implicit`` attached (the baseline without)."""
    quiet_mmengine()
    # torch's default init (fast) but for the DETR family, whose matcher's costs it can make NaN
    model = build_detector(_baseline_cfg(family), implicit, init_weights=family in ("dino", "deformable_detr"))
    if family == "sparse_rcnn":
        model.rpn_head.init_weights()  # proposals start as the whole image, not of random (negative) size
    return model


@pytest.mark.parametrize("family", MMDET_FAMILIES)
def test_placements_resolve_by_structure(family):

    model = _build(family)
    resolution = resolution_of(model)
    assert resolution.method == "loss", resolution.error  # traced, not the names fallback
    for name, paths in EXPECTED[family].items():
        assert [s.path for s in resolve_placement(model, PlacementSpec(name=name))] == paths
    assert [s.path for s in resolve_placement(model, PlacementSpec(name="head_in"))] == EXPECTED_HEAD_IN[family]


# Mask and Sparse R-CNN (2 to 5x the others) are slow; the fast tier keeps the other families and all placements.
@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_default_variant_trains_and_fuses(family):
    """fpn + pred by name: every implicit parameter gets a gradient; the fused model gives
    the same head outputs (RPN proposals held fixed) and the same output at every site."""

    quiet_mmengine()
    model = _build(family, dict(placements=["fpn", "pred"]))
    assert count_implicit_params(model) > 0
    result = train_step(copy.deepcopy(model), SIZES.get(family, SIZE))
    assert result["implicit_params"] == len([n for n, _ in model.named_parameters() if is_implicit_key(n)])
    assert not result["zero_grad"], f"implicit parameters without gradient: {result['zero_grad']}"
    # only a multiply after mmdet's zero-initialised last regression linear waits for a step
    assert all(".reg_branches." in n for n in result["zero_at_first_step"])

    fuse = compare_fused(model, SIZES.get(family, SIZE))
    assert fuse["max_diff"] <= TOLERANCE, f"fused model differs by {fuse['max_diff']:.3g} at {fuse['worst_at']}"
    tail, kept = KEPT_FPN.get(family, (None, 0))
    assert fuse["kept"] == kept and fuse["folded"] + kept == len(list(implicit_modules(model)))
    if kept:
        assert fuse["kept_reasons"] == [f"fpn: after the {tail} of ConvModule: a constant there does not fold "
                                        "into its Conv2d, and no single plain layer reads it"]
    fused = copy.deepcopy(model)
    report = fuse_implicit(fused)
    assert {name for name, _ in implicit_modules(fused)} == {e.path for e in report.kept}


def test_tracing_leaves_the_model_as_it_was():
    """The trace runs the loss in train mode: statistics, flags, attributes and RNG come back."""
    import torch


    model = _build("atss")
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    attributes = {name: set(m.__dict__) for name, m in model.named_modules()}
    assert resolution_of(model).method == "loss"
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert not any(m.training for m in model.modules())
    assert {name: set(m.__dict__) for name, m in model.named_modules()} == attributes
    copy.deepcopy(model)  # no tensor of the trace's graph left behind


def test_names_are_the_fallback_when_the_detector_cannot_run():

    model = _build("atss")

    def no_kernel(*args, **kwargs):
        raise RuntimeError("some_op_forward_impl: implementation for device cpu not found.")
    model.loss = model._forward = no_kernel
    resolution = resolution_of(model)
    assert resolution.method == "names"
    assert "loss mode at 64px: RuntimeError: some_op_forward_impl" in resolution.error
    assert [s.path for s in resolve_placement(model, PlacementSpec(name="pred"))] == [
        "bbox_head.atss_cls", "bbox_head.atss_reg", "bbox_head.atss_centerness"]
    assert [s.path for s in resolve_placement(model, PlacementSpec(name="fpn"))] == LEVELS
