"""Implicit modules, settings, placements on the five families, gradients, checkpoints."""
from __future__ import annotations

import copy
import itertools
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yolor_ray.engine.checkpoint import load_checkpoint_file
from yolor_ray.implicit import (
    ImplicitA,
    ImplicitC,
    ImplicitM,
    ImplicitSpec,
    PlacementError,
    attach_implicit,
    available_placements,
    implicit_modules,
    is_implicit_key,
    load_weights,
    make_implicit,
)
from yolor_ray.implicit.attach import count_implicit_params

from support.implicit import FAMILIES, batch, build, flat_outputs, small_cfg

pytestmark = pytest.mark.usefixtures("one_thread")

# ---------------------------------------------------------------- modules


@pytest.mark.parametrize("cls, mean", [(ImplicitA, 0.0), (ImplicitM, 1.0), (ImplicitC, 0.0)])
@pytest.mark.parametrize("modeling", ["vector", "nn", "mf"])
def test_modelings_start_at_the_paper_init(cls, mean, modeling):
    torch.manual_seed(0)
    module = cls(20000, modeling=modeling, atoms=4, dim=8)
    z = module.implicit().detach()
    assert z.shape == (20000,)
    assert abs(z.mean().item() - mean) < 2e-3
    assert abs(z.std().item() - 0.02) < 2e-3
    expected = {"vector": 20000, "nn": 8 + 20000 * 8, "mf": 4 * 20000 + 4}[modeling]
    assert module.num_implicit_params() == expected


def test_operators_act_on_the_channel_axis():
    x = torch.randn(2, 3, 5, 5)
    add, mul = ImplicitA(3), ImplicitM(3, mean=2.0, std=0.0)
    torch.testing.assert_close(add(x), x + add.z.view(1, 3, 1, 1))
    torch.testing.assert_close(mul(x), 2 * x)
    linear_out = torch.randn(7, 4)
    torch.testing.assert_close(ImplicitM(4, mean=3.0, std=0.0, channel_axis=-1)(linear_out), 3 * linear_out)
    levels = (torch.randn(1, 3, 4, 4), torch.randn(1, 3, 2, 2))  # FPN levels: a tuple
    assert all(torch.equal(a, b + add.z.view(1, 3, 1, 1)) for a, b in zip(add(levels), levels))
    cat = ImplicitC(2)
    out = cat(x)
    assert out.shape == (2, 5, 5, 5) and torch.equal(out[:, :3], x)
    assert torch.equal(out[0, 3:, 4, 4], cat.z.detach())
    with pytest.raises(ValueError, match="holds 3 channels but its input has 4"):
        add(torch.randn(1, 4, 2, 2))


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 6, 3, padding=1, stride=2), nn.Conv2d(3, 6, 1), nn.Linear(3, 6)])
def test_concat_bound_to_a_layer_is_concat_into_a_wider_layer(layer):
    cat = ImplicitC(2, modeling="mf", atoms=3, channel_axis=1 if isinstance(layer, nn.Conv2d) else -1)
    cat.bind(layer)
    layer.register_forward_hook(cat.layer_hook)
    x = torch.randn(2, 3, 9, 9) if isinstance(layer, nn.Conv2d) else torch.randn(5, 3)
    wide_weight = torch.cat([layer.weight, cat.w_cat], dim=1)
    if isinstance(layer, nn.Conv2d):
        expected = F.conv2d(cat(x), wide_weight, layer.bias, layer.stride, layer.padding)
    else:
        expected = F.linear(cat(x), wide_weight, layer.bias)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("kwargs, match", [
    (dict(std=-0.1), r"ImplicitA\(std\) must be >= 0, got -0.1"),
    (dict(modeling="mf", atoms=0), r"ImplicitA\(atoms\) must be an int >= 1, got 0"),
    (dict(modeling="nn", dim=0), r"ImplicitA\(dim\) must be an int >= 1, got 0"),
    (dict(modeling="matrix"), r"ImplicitA\(modeling\) must be one of vector, nn, mf, got 'matrix'"),
    (dict(mean=float("nan")), r"ImplicitA\(mean\) must be a finite number"),
])
def test_module_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImplicitA(8, **kwargs)


def test_unknown_operator_is_named():
    with pytest.raises(ValueError, match="implicit operator must be one of add, multiply, concat, got 'sub'"):
        make_implicit("sub", 4)


# ---------------------------------------------------------------- settings


def test_spec_defaults_are_the_papers():
    spec = ImplicitSpec.from_config(dict())
    assert [p.name for p in spec.placements] == ["fpn", "pred"]
    assert [p.operators for p in spec.placements] == [("add",), ("multiply",)]
    assert (spec.init.add.mean, spec.init.add.std) == (0.0, 0.02)
    assert (spec.init.multiply.mean, spec.init.multiply.std) == (1.0, 0.02)
    assert ImplicitSpec.from_config(spec.to_config()) == spec
    spec = ImplicitSpec.from_config(dict(placements=[dict(name="pred", operators=["multiply", "add"]),
                                                     dict(path="neck.fpn_convs.0", side="input",
                                                          operators="multiply")],
                                         modeling="mf", atoms=2, init=dict(multiply=dict(std=0.1))))
    assert spec.placements[0].operators == ("multiply", "add")
    assert spec.placements[1].label == "neck.fpn_convs.0:input"
    assert (spec.init.multiply.mean, spec.init.multiply.std) == (1.0, 0.1)
    assert ImplicitSpec.from_config(spec.to_config()) == spec
    with pytest.raises(Exception):
        spec.modeling = "nn"  # frozen


@pytest.mark.parametrize("implicit, match", [
    (dict(placements=["fnp"]), r"unknown implicit placement 'fnp' \(did you mean 'fpn'\?\); valid placements: "
                               r"fpn, pred, rpn, roi, head_in"),
    (dict(init=dict(add=dict(std=-0.02))), r"ImplicitSpec\(init.add.std\) must be >= 0, got -0.02"),
    (dict(modeling="mf", atoms=0), r"ImplicitSpec\(atoms\) must be an int >= 1, got 0"),
    (dict(dim=-3), r"ImplicitSpec\(dim\) must be an int >= 1, got -3"),
    (dict(modeling="svd"), r"ImplicitSpec\(modeling\) must be one of vector, nn, mf, got 'svd'"),
    (dict(placement=["fpn"]), r"ImplicitSpec: unknown key 'placement' \(did you mean 'placements'\?\)"),
    (dict(init=dict(mul=dict(std=0.1))), r"ImplicitSpec\(init\): unknown key 'mul' \(did you mean 'multiply'\?\)"),
    (dict(placements=[dict(name="pred", operators=["times"])]), r"unknown operator 'times'; valid operators: add, "
                                                                r"multiply, concat"),
    (dict(placements=[dict(path="neck.fpn_convs.0", operators=["add"])]), r"PlacementSpec\(side\) for path "
                                                                          r"'neck.fpn_convs.0' must be one of input, "
                                                                          r"output, got None"),
    (dict(placements=[dict(name="fpn", atoms=0)]), r"PlacementSpec\(atoms\) must be an int >= 1, got 0"),
    (dict(placements=[]), r"ImplicitSpec\(placements\) must name at least one placement"),
])
def test_spec_rejects_bad_settings(implicit, match):
    with pytest.raises(ValueError, match=match):
        ImplicitSpec.from_config(implicit)


def test_bad_settings_fail_before_the_detector_is_built():
    with pytest.raises(ValueError, match="unknown implicit placement 'fnp'"):
        build(small_cfg("atss", dict(placements=["fnp"])))
    cfg = small_cfg("atss")
    cfg["detector"] = "ATS"
    with pytest.raises(ValueError, match=r"YOLOR\(detector\): 'ATS' is not a registered mmdet model; did you mean "
                                         r"'ATSS'"):
        build(cfg)


# ---------------------------------------------------------------- placements per family

# family -> placement -> the module paths it resolves to (R-18 small models: same heads as R-50)
EXPECTED_SITES = {
    "faster_rcnn": {
        "fpn": [f"neck.fpn_convs.{i}" for i in range(4)],
        "pred": ["rpn_head.rpn_cls", "rpn_head.rpn_reg", "roi_head.bbox_head.fc_cls", "roi_head.bbox_head.fc_reg"],
        "rpn": ["rpn_head.rpn_conv"],
        "roi": ["roi_head.bbox_roi_extractor"],
        "head_in": ["rpn_head.rpn_conv"],
    },
    "mask_rcnn": {
        "fpn": [f"neck.fpn_convs.{i}" for i in range(4)],
        "pred": ["rpn_head.rpn_cls", "rpn_head.rpn_reg", "roi_head.bbox_head.fc_cls", "roi_head.bbox_head.fc_reg",
                 "roi_head.mask_head.conv_logits"],
        "rpn": ["rpn_head.rpn_conv"],
        "roi": ["roi_head.bbox_roi_extractor", "roi_head.mask_roi_extractor"],
        "head_in": ["rpn_head.rpn_conv"],
    },
    "fcos": {
        "fpn": [f"neck.fpn_convs.{i}" for i in range(5)],
        "pred": ["bbox_head.conv_cls", "bbox_head.conv_reg", "bbox_head.conv_centerness"],
        "head_in": ["bbox_head.cls_convs.0", "bbox_head.reg_convs.0"],
    },
    "atss": {
        "fpn": [f"neck.fpn_convs.{i}" for i in range(5)],
        "pred": ["bbox_head.atss_cls", "bbox_head.atss_reg", "bbox_head.atss_centerness"],
        "head_in": ["bbox_head.cls_convs.0", "bbox_head.reg_convs.0"],
    },
    "sparse_rcnn": {
        "fpn": [f"neck.fpn_convs.{i}" for i in range(4)],
        "pred": [f"roi_head.bbox_head.{s}.{n}" for s in range(6) for n in ("fc_cls", "fc_reg")],
        "roi": [f"roi_head.bbox_roi_extractor.{s}" for s in range(6)],
        "head_in": [f"roi_head.bbox_head.{s}.{n}.0" for s in range(6) for n in ("cls_fcs", "reg_fcs")],
    },
}
OUTPUT_SIDE = {"fpn", "pred", "rpn", "roi"}


@pytest.fixture(scope="module")
def baselines():
    """One small baseline model per family, deep-copied by each test that changes it."""
    return {family: build(small_cfg(family, yolor=False)) for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_placements_resolve_per_family(family, baselines):
    from yolor_ray.implicit import resolve_placement
    from yolor_ray.implicit.spec import PlacementSpec

    model = baselines[family]
    expected = EXPECTED_SITES[family]
    assert available_placements(model) == [p for p in ("fpn", "pred", "rpn", "roi", "head_in") if p in expected]
    for name, paths in expected.items():
        sites = resolve_placement(model, PlacementSpec(name=name))
        assert [s.path for s in sites] == paths
        assert {s.side for s in sites} == {"output" if name in OUTPUT_SIDE else "input"}
    for name in {"fpn", "pred", "rpn", "roi", "head_in"} - set(expected):
        valid = ", ".join(p for p in ("fpn", "pred", "rpn", "roi", "head_in") if p in expected)
        with pytest.raises(PlacementError, match=rf"implicit placement '{name}' does not exist on "
                                                 rf"{type(model).__name__}; valid placements for "
                                                 rf"{type(model).__name__}: {valid} \(or dict"):
            attach_implicit(copy.deepcopy(model), ImplicitSpec.from_config(dict(placements=[name])))


def test_bad_paths_and_concat_sides_are_named(baselines):
    model = baselines["atss"]
    with pytest.raises(PlacementError, match=r"'bbox_head.atss_clss' is not a module of ATSS; children of bbox_head: "
                                             r".*atss_cls"):
        attach_implicit(copy.deepcopy(model), ImplicitSpec.from_config(
            dict(placements=[dict(path="bbox_head.atss_clss", side="output", operators="add")])))
    with pytest.raises(PlacementError, match=r"operator 'concat' adds channels.*placement 'fpn' acts on the output"):
        attach_implicit(copy.deepcopy(model), ImplicitSpec.from_config(
            dict(placements=[dict(name="fpn", operators="concat")])))
    with pytest.raises(PlacementError, match=r"bbox_head.cls_convs is a ModuleList; name one of its layers"):
        attach_implicit(copy.deepcopy(model), ImplicitSpec.from_config(
            dict(placements=[dict(path="bbox_head.cls_convs", side="input", operators="add")])))
    with pytest.raises(PlacementError, match=r"puts a second 'multiply' at the output of bbox_head.atss_cls "
                                             r"\(placement 'pred' put one there already\)"):
        attach_implicit(copy.deepcopy(model), ImplicitSpec.from_config(
            dict(placements=["pred", dict(path="bbox_head.atss_cls", side="output", operators="multiply")])))


def _expected_params(channels: int, modeling: str, atoms: int = 2, dim: int = 3) -> int:
    return {"vector": channels, "nn": dim + channels * dim, "mf": atoms * channels + atoms}[modeling]


# Mask and Sparse R-CNN (2 to 5x the others) are slow; the fast tier keeps the other families and all placements.
@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_every_placement_operator_and_modeling_builds_and_runs(family, baselines):
    """Every placement x operator x modeling that applies attaches with the right parameter count.

    A forward pass runs for one modeling per operator (the modelings differ only in how
    z is computed, which the module tests cover): 3 forwards, not 9, per family.
    """
    from yolor_ray.implicit import resolve_placement
    from yolor_ray.implicit.spec import PlacementSpec

    base = baselines[family]
    placements = list(EXPECTED_SITES[family])
    data = batch(base, size=64, num_images=1, training=False)
    run_forward = {("add", "vector"), ("multiply", "nn"), ("concat", "mf")}
    for operator, modeling in itertools.product(("add", "multiply", "concat"), ("vector", "nn", "mf")):
        names = placements if operator != "concat" else ["head_in"]
        spec = ImplicitSpec.from_config(dict(placements=[dict(name=n, operators=[operator]) for n in names],
                                             modeling=modeling, atoms=2, dim=3, concat_channels=5))
        model = copy.deepcopy(base)
        attached = attach_implicit(model, spec)
        sites = [s for n in names for s in resolve_placement(base, PlacementSpec(name=n))]
        assert len(attached) == len(sites) == len(list(implicit_modules(model)))
        expected = 0
        for site in sites:
            if operator == "concat":
                layer = base.get_submodule(site.path)
                layer = getattr(layer, "conv", layer)
                expected += _expected_params(5, modeling) + layer.weight[:, :5].numel()
            else:
                expected += _expected_params(site.channels, modeling)
        assert count_implicit_params(model) == expected
        assert {k for k in model.state_dict() if not is_implicit_key(k)} == set(base.state_dict())
        if (operator, modeling) in run_forward:
            model.eval()
            with torch.no_grad():
                out = flat_outputs(model, data)
            assert torch.isfinite(out).all()


# ---------------------------------------------------------------- training


def _training_spec(family: str) -> dict:
    """Every operator and modeling at once, on the placements of the family."""
    placements = [dict(name="fpn", operators=["add"]),
                  dict(name="pred", operators=["multiply", "add"], modeling="mf"),
                  dict(name="head_in", operators=["concat"], modeling="nn")]
    placements += [dict(name=n, operators=["multiply"], modeling="nn") for n in ("rpn", "roi")
                   if n in EXPECTED_SITES[family]]
    return dict(placements=placements, atoms=3, dim=4)


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in ("mask_rcnn", "sparse_rcnn") else f
                                    for f in FAMILIES])
def test_implicit_parameters_learn(family):
    model = build(small_cfg(family, _training_spec(family)))
    model.train()
    data = batch(model, size=64, masks=family == "mask_rcnn")
    params = {n: p for n, p in model.named_parameters() if is_implicit_key(n)}
    start = {n: p.detach().clone() for n, p in params.items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for step in range(3):
        optimizer.zero_grad()
        loss, _ = model.parse_losses(model.loss(data["inputs"], data["data_samples"]))
        loss.backward()
        if step == 0:
            no_grad = [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not no_grad, f"implicit parameters without gradient: {no_grad}"
        optimizer.step()
    unmoved = [n for n, p in params.items() if torch.equal(p.detach(), start[n])]
    assert not unmoved, f"implicit parameters that did not move: {unmoved}"


def test_hooks_survive_deepcopy_and_pickle():
    model = build(small_cfg("faster_rcnn", dict(placements=["fpn", "pred", "roi"])))
    model.eval()
    with torch.no_grad():
        for _, implicit in implicit_modules(model):
            for p in implicit.parameters():
                p.add_(0.5)  # make the implicits matter
    data = batch(model, size=64, training=False)
    with torch.no_grad():
        expected = flat_outputs(model, data)
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            torch.testing.assert_close(flat_outputs(clone, data), expected)
            hook_owners = [h.__self__ for _, m in clone.named_modules() for h in m._forward_hooks.values()
                           if hasattr(h, "__self__")]
            assert {id(o) for o in hook_owners} == {id(m) for _, m in implicit_modules(clone)}
        # and the hooks really act: removing the implicits changes the outputs
        plain = copy.deepcopy(model)
        for _, module in plain.named_modules():
            module._forward_hooks.clear()
        assert not torch.allclose(flat_outputs(plain, data), expected)


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_load_both_ways(tmp_path):
    baseline = build(small_cfg("mask_rcnn", yolor=False), seed=1)
    yolor = build(small_cfg("mask_rcnn", dict(placements=["fpn", "pred", "roi"])), seed=2)
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict(epoch=1)), tmp_path / "baseline.pth")
    implicit_keys = {k for k in yolor.state_dict() if is_implicit_key(k)}
    assert implicit_keys and all(".implicit_" in k for k in implicit_keys)

    # baseline -> YOLOR: only the implicit keys missing, reported; they keep their init
    before = {k: v.clone() for k, v in yolor.state_dict().items() if k in implicit_keys}
    report = load_weights(yolor, load_checkpoint_file(tmp_path / "baseline.pth"))
    assert set(report.missing_implicit) == implicit_keys
    assert not (report.missing or report.unexpected or report.unexpected_implicit)
    assert "implicit keys missing (left at their init)" in report.summary()
    state = yolor.state_dict()
    assert all(torch.equal(state[k], v) for k, v in baseline.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in before.items())

    # YOLOR -> YOLOR: exact
    torch.save(dict(state_dict=yolor.state_dict()), tmp_path / "yolor.pth")
    again = build(small_cfg("mask_rcnn", dict(placements=["fpn", "pred", "roi"])), seed=3)
    assert load_weights(again, load_checkpoint_file(tmp_path / "yolor.pth")).exact
    assert all(torch.equal(again.state_dict()[k], v) for k, v in yolor.state_dict().items())

    # YOLOR -> baseline: only implicit keys left over
    report = load_weights(copy.deepcopy(baseline), load_checkpoint_file(tmp_path / "yolor.pth"))
    assert set(report.unexpected_implicit) == implicit_keys and not report.missing

    # another detector's checkpoint: named, not silently half-loaded
    with pytest.raises(ValueError, match="checkpoint does not fit MaskRCNN"):
        load_weights(yolor, build(small_cfg("atss", yolor=False)).state_dict())
