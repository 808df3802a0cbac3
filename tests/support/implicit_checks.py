"""Checks of implicit knowledge on one built detector, on CPU: one train step (every implicit
parameter must get a non-zero gradient) and a fused copy against the unfused model on dense
outputs. tests/test_families.py runs them on small models (``support.implicit_checks``);
``make coverage`` (scripts/implicit_coverage.py, ``tests.support.implicit_checks`` from the
repository root) on every family folder of mmdet's configs for the table in docs/implicit.md.
They read config files, so they live beside the tests, not in the package.

Models come from plain mmdet model configs (:func:`model_cfg_of` reads one from a config
file, pretrained downloads dropped) and :func:`build_detector`, which attaches implicit
settings as ``type='YOLOR'`` does. Nothing here resolves placements: that is
:func:`~yolor_ray.implicit.resolve_placement` and :func:`~yolor_ray.implicit.resolution_of`.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping

import mmdet
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from torch import nn

from yolor_ray.implicit import build_yolor, fuse_implicit, implicit_modules, is_implicit_key
from yolor_ray.implicit.trace import synthetic_batch, tensors_in

# ---------------------------------------------------------------- building


def mmdet_configs() -> Path:
    """mmdet's own ``configs/`` folder, as installed."""
    return Path(mmdet.__file__).parent / ".mim" / "configs"


def _no_downloads(node):
    """Drop pretrained-weight loading: nothing can be downloaded here."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "init_cfg" and isinstance(value, dict) and value.get("type") == "Pretrained":
                out[key] = None
            elif key == "pretrained" and isinstance(value, (str, bool)):
                out[key] = False if isinstance(value, bool) else None
            else:
                out[key] = _no_downloads(value)
        return out
    if isinstance(node, list):
        return [_no_downloads(v) for v in node]
    return node


def model_cfg_of(config: Path) -> dict:
    """The model config of a config file, with its pretrained weights left out."""
    return _no_downloads(Config.fromfile(str(config)).model.to_dict())


def build_detector(model_cfg: Mapping, implicit: Mapping | None = None, seed: int = 0,
                   init_weights: bool = True) -> nn.Module:
    """The detector of a plain mmdet model config, seeded, with ``implicit`` settings attached
    (as ``type='YOLOR'`` does) when given; the detector's own ``init_weights`` unless
    ``init_weights=False`` (torch's default init: faster on CPU)."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(seed)
    cfg = copy.deepcopy(dict(model_cfg))
    with DefaultScope.overwrite_default_scope("mmdet"):
        if implicit is None:
            model = MODELS.build(ConfigDict(cfg))
        else:
            detector = cfg.pop("type")
            model = build_yolor(detector, implicit, **cfg)
    if init_weights:
        model.init_weights()
    return model


# ---------------------------------------------------------------- one train step


def batch(model: nn.Module, size: int, training: bool, masks: bool = True) -> dict:
    """The synthetic batch the placements are traced on, through the model's data preprocessor."""
    preprocessor = model.data_preprocessor
    augments = getattr(preprocessor, "batch_augments", None)
    if augments is not None:
        preprocessor.batch_augments = None  # random resizes to 480-800 px: not what a check needs
    try:
        return preprocessor(synthetic_batch(size, masks=masks), training=training)
    finally:
        if augments is not None:
            preprocessor.batch_augments = augments


def _runner_info() -> None:
    """What a Runner's message hub holds (TOOD reads the epoch)."""
    hub = MessageHub.get_current_instance()
    for key in ("epoch", "iter"):
        if hub.get_info(key) is None:
            hub.update_info(key, 0)


def train_step(model: nn.Module, size: int, steps: int = 2, masks: bool = True) -> dict:
    """Loss + backward (+ an SGD step between); the implicit parameters, and those whose
    gradient stayed zero in every step.

    Two steps: a multiply after a zero-initialised layer (mmdet inits the DETR family's
    last regression linear to 0) has a zero gradient until that layer moves.
    """
    _runner_info()
    model.train()
    params = {n: p for n, p in model.named_parameters() if is_implicit_key(n)}
    moved, first = set(), set()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    data = batch(model, size, training=True, masks=masks)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        step_data = copy.deepcopy(data)  # RoI heads pop the proposals' boxes from the samples
        loss, _ = model.parse_losses(model.loss(step_data["inputs"], step_data["data_samples"]))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        loss.backward()
        losses.append(float(loss))
        moved |= {n for n, p in params.items() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
        if step == 0:
            first = set(moved)
        if moved == set(params):
            break
        optimizer.step()
    model.zero_grad()
    return dict(losses=losses, implicit_params=len(params), zero_grad=sorted(set(params) - moved),
                zero_at_first_step=sorted(set(params) - first))


# ---------------------------------------------------------------- fusion equality


def perturb(model: nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Move every implicit away from its init, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, implicit in implicit_modules(model):
            for p in implicit.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * scale)


def _heads(model: nn.Module) -> list[str]:
    """The detector's heads: its children whose class name ends in ``Head`` or whose name
    says ``head`` (``rpn_head``, ``bbox_head``, ``roi_head`` ...)."""
    return [name for name, child in model.named_children()
            if name not in ("backbone", "neck", "data_preprocessor")
            and (type(child).__name__.endswith("Head") or "head" in name)]


def _compared_paths(model: nn.Module) -> list[str]:
    """Every head (and head stage) and every module an implicit acts on."""
    roots = _heads(model)
    paths = set(roots)
    for path, module in model.named_modules():
        if any(path.startswith(r + ".") for r in roots) and type(module).__name__.endswith("Head"):
            paths.add(path)
    for path, _ in implicit_modules(model):
        paths.add(path.rpartition(".")[0])
    return sorted(paths)


def _run_dense(model, data, paths, mode, replayed=None):
    """Outputs of ``paths`` (per call) in one forward, and its discrete selections (or replay ``replayed``)."""
    records: dict[str, list] = {}
    handles = []
    for path in paths:
        def hook(module, args, output, path=path):
            records.setdefault(path, []).append([t.detach().float().clone() for t in tensors_in(output)])
        handles.append(model.get_submodule(path).register_forward_hook(hook))
    # The discrete selections (the RPN's NMS, DINO's top-k encoder queries) are replayed
    # from the unfused run: what follows them is compared on the same proposals / queries.
    selections = [(getattr(model, "rpn_head", None), "predict"), (model, "pre_decoder")]
    selections = [(owner, name) for owner, name in selections if owner is not None and hasattr(owner, name)]
    seen = {}
    for owner, name in selections:
        def replay(*args, _original=getattr(owner, name), _name=name, **kwargs):  # noqa: B008 (bound per owner)
            made = _original(*args, **kwargs)  # run anyway: its layers' outputs are compared too
            if replayed is not None:
                return copy.deepcopy(replayed[_name])
            seen[_name] = made
            return copy.deepcopy(made)
        setattr(owner, name, replay)
    try:
        with torch.no_grad():
            data = copy.deepcopy(data)
            model(data["inputs"], data["data_samples"], mode=mode)
    finally:
        for handle in handles:
            handle.remove()
        for owner, name in selections:
            owner.__dict__.pop(name, None)
    return records, seen


def compare_fused(model: nn.Module, size: int) -> dict:
    """Perturb the implicits of ``model``, fuse a copy; the largest difference on dense outputs,
    relative to max(1, max |unfused|) of each tensor, and where."""
    perturb(model)
    model.eval()
    fused = copy.deepcopy(model)
    report = fuse_implicit(fused)
    data = batch(model, size, training=False)
    paths = _compared_paths(model)
    errors = []
    for mode in ("tensor", "predict"):
        try:
            expected, selections = _run_dense(model, data, paths, mode)
            got, _ = _run_dense(fused, data, paths, mode, selections)
            break
        except Exception as err:  # noqa: BLE001 - some detectors have no tensor mode
            errors.append(f"{mode}: {type(err).__name__}: {err}")
    else:
        raise RuntimeError("; ".join(errors))
    worst, where = 0.0, None
    for path, calls in expected.items():
        if len(got.get(path, [])) != len(calls):
            raise AssertionError(f"{path} ran {len(calls)} times unfused, {len(got.get(path, []))} fused")
        for a_list, b_list in zip(calls, got[path]):
            for a, b in zip(a_list, b_list):
                if a.shape != b.shape:
                    raise AssertionError(f"{path}: shape {tuple(a.shape)} unfused, {tuple(b.shape)} fused")
                if a.numel() == 0:
                    continue
                diff = ((a - b).abs().max() / max(1.0, a.abs().max().item())).item()
                if not diff <= worst:
                    worst, where = diff, path
    return dict(folded=len(report.folded), kept=len(report.kept), max_diff=worst, worst_at=where,
                kept_reasons=sorted({f"{e.placement}: {e.reason}" for e in report.kept}),
                compared=len(expected), mode=mode)
