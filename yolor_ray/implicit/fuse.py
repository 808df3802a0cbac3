"""Fold implicit tensors into neighbouring conv / linear layers for deploy.

At inference ``z`` is a constant, so wherever it is exact it moves into a layer
(``W``: weight, ``b``: bias; per output channel ``o``, per input channel ``i``):

========================================  ==========================================
implicit, where                           fold (exact)
========================================  ==========================================
add after a layer                         ``b += z``
multiply after a layer                    ``W[o] *= z[o]``, ``b *= z``
multiply before a layer (groups=1)        ``W[:, i] *= z[i]`` (zero padding stays 0)
add before a linear / unpadded conv       ``b += sum_spatial(W) z``
concat before a linear / unpadded conv    ``b += sum_spatial(W_cat) z``
after an RoI extractor, read flattened    as *before* its consumer, with ``z`` repeated
by one linear layer (Faster/Mask R-CNN)   over the ``H*W`` positions of each channel
========================================  ==========================================

"After a layer" means the layer produces the module's output (a Conv2d / Linear, or an
mmcv ConvModule without norm and activation, such as FPN's ``fpn_convs``). An
implicit stays in the model -- still a child module with its hook -- where folding is
not exact: add / concat before a zero-padded k x k conv (the padded border would
see the constant), anything before or after a norm, activation, dynamic or normalised
conv, or a layer without bias for an add. A chain of implicits at one side is folded
from the layer outwards and stops at the first that cannot fold, so the order of
operations is kept.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from yolor_ray.implicit.attach import detach_implicit, implicit_hooks, implicit_modules
from yolor_ray.implicit.build import YOLOR_TYPE, split_yolor_cfg
from yolor_ray.implicit.layers import input_layer, output_layer
from yolor_ray.implicit.modules import Implicit, ImplicitA, ImplicitC, ImplicitM

DEPLOY_CHECKPOINT = "deploy.pth"
DEPLOY_CONFIG = "deploy.py"
FUSE_REPORT = "fuse_report.json"


@dataclass(frozen=True)
class FuseEntry:
    """One implicit module: folded ``into`` a layer, or kept for ``reason``."""

    path: str
    operator: str
    side: str
    placement: str
    into: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class FuseReport:
    folded: tuple[FuseEntry, ...] = ()
    kept: tuple[FuseEntry, ...] = ()

    def summary(self) -> str:
        lines = [f"folded {len(self.folded)} implicit module(s), kept {len(self.kept)}"]
        lines += [f"  folded {e.path} ({e.operator}) into {e.into}" for e in self.folded]
        lines += [f"  kept   {e.path} ({e.operator}): {e.reason}" for e in self.kept]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(folded=[asdict(e) for e in self.folded], kept=[asdict(e) for e in self.kept])


@dataclass(frozen=True)
class FuseResult:
    """What :func:`fuse_checkpoint` wrote."""

    checkpoint: Path
    config: Path
    report_file: Path
    report: FuseReport = field(default_factory=FuseReport)


def _shape_for(weight: Tensor, axis: int) -> list[int]:
    shape = [1] * weight.dim()
    shape[axis] = -1
    return shape


def _fold_output(layer: nn.Module, implicit: Implicit) -> str | None:
    """Fold an implicit acting on ``layer``'s output into it; the reason if it cannot."""
    with torch.no_grad():
        if isinstance(implicit, ImplicitC):
            extra = implicit.constant_contribution(layer)
            if extra is None:
                return "concat before a zero-padded conv: its contribution differs at the borders"
            if layer.bias is None:
                return f"{type(layer).__name__} has no bias to take the concat's constant"
            layer.bias += extra
            return None
        z = implicit.implicit().detach()
        if isinstance(implicit, ImplicitA):
            if layer.bias is None:
                return f"{type(layer).__name__} has no bias to take the added constant"
            layer.bias += z
        elif isinstance(implicit, ImplicitM):
            layer.weight.mul_(z.view(_shape_for(layer.weight, 0)))
            if layer.bias is not None:
                layer.bias.mul_(z)
        else:  # pragma: no cover - all operators are handled above
            return f"no fold rule for {type(implicit).__name__}"
    return None


def _fold_input(layer: nn.Module, implicit: Implicit, flatten: bool = False) -> str | None:
    """Fold an implicit acting on ``layer``'s input into it; the reason if it cannot."""
    z = implicit.implicit().detach()
    in_size = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    if flatten:
        if in_size % z.numel():
            return f"the consumer reads {in_size} values, not a multiple of {z.numel()} channels"
        z = z.repeat_interleave(in_size // z.numel())
    if z.numel() != in_size:
        return f"{type(layer).__name__} reads {in_size} channels, the implicit holds {z.numel()}"
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return "grouped conv"
    with torch.no_grad():
        if isinstance(implicit, ImplicitM):
            layer.weight.mul_(z.view(_shape_for(layer.weight, 1)))
        elif isinstance(implicit, ImplicitA):
            if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros" and any(p != 0 for p in layer.padding):
                return (f"add before a zero-padded {layer.kernel_size[0]}x{layer.kernel_size[1]} conv: "
                        "inexact at the padded borders")
            if layer.bias is None:
                return f"{type(layer).__name__} has no bias to take W z"
            weight = layer.weight if isinstance(layer, nn.Linear) else layer.weight.sum(dim=(2, 3))
            layer.bias += weight @ z
        else:
            return f"no fold rule for {type(implicit).__name__} before a layer"
    return None


def fuse_implicit(model: nn.Module) -> FuseReport:
    """Fold every exactly foldable implicit module of ``model`` into its layers (in place).

    Folded modules and their hooks are removed; the others stay and keep working.
    Call it on a model in eval mode (it does not matter for the maths: z is constant).
    """
    paths = {id(m): name for name, m in model.named_modules()}
    order = {name: i for i, name in enumerate(paths.values())}
    hosts = [(name, m) for name, m in model.named_modules()
             if implicit_hooks(m, "input") or implicit_hooks(m, "output")]
    folded: list[FuseEntry] = []
    kept: list[FuseEntry] = []

    def entry(host_path: str, implicit: Implicit, into: str | None = None, reason: str | None = None):
        name = next(n for n, c in model.get_submodule(host_path).named_children() if c is implicit)
        item = FuseEntry(f"{host_path}.{name}" if host_path else name, implicit.operator, implicit.side,
                         implicit.placement, into, reason)
        (folded if reason is None else kept).append(item)

    # Input sides first (deepest modules first), so that a consumer's own input
    # implicits are gone before an RoI extractor's output is folded into it.
    for host_path, host in reversed(hosts):
        chain = implicit_hooks(host, "input")
        if not chain:
            continue
        layer = input_layer(host)
        reason = None
        if layer is None:
            reason = f"the input of {type(host).__name__} is not read by a plain conv / linear layer"
        elif layer is not host and implicit_hooks(layer, "input"):
            reason = "its layer keeps an implicit of its own at the input"
        for _, implicit in reversed(chain):  # from the layer outwards
            if reason is None:
                reason = _fold_input(layer, implicit)
            entry(host_path, implicit, paths[id(layer)] if reason is None else None, reason)
            if reason is None:
                detach_implicit(host, implicit)

    for host_path, host in reversed(hosts):
        chain = implicit_hooks(host, "output")
        if not chain:
            continue
        layer = output_layer(host)
        if layer is not None:
            reason = None
            if layer is not host and implicit_hooks(layer, "output"):
                reason = "its layer keeps an implicit of its own at the output"
            for _, implicit in chain:  # from the layer outwards
                if reason is None:
                    reason = _fold_output(layer, implicit)
                entry(host_path, implicit, paths[id(layer)] if reason is None else None, reason)
                if reason is None:
                    detach_implicit(host, implicit)
            continue
        reason, consumer_path = None, None
        for _, implicit in reversed(chain):  # into the consumer's input, nearest first
            consumer = None
            if reason is None:
                consumer_path = implicit.consumer
                consumer = input_layer(model.get_submodule(consumer_path)) if consumer_path else None
                if consumer is None:
                    reason = (f"no plain conv / linear layer produces or reads the output of "
                              f"{type(host).__name__}")
                elif implicit_hooks(model.get_submodule(consumer_path), "input") or implicit_hooks(consumer, "input"):
                    reason = f"the consumer {consumer_path} keeps an implicit at its input"
                else:
                    reason = _fold_input(consumer, implicit, flatten=implicit.consumer_flatten)
            entry(host_path, implicit, paths[id(consumer)] if reason is None else None, reason)
            if reason is None:
                detach_implicit(host, implicit)
    def in_model_order(entries: list[FuseEntry]) -> tuple[FuseEntry, ...]:
        return tuple(sorted(entries, key=lambda e: (order.get(e.path.rpartition(".")[0], -1), e.path)))

    return FuseReport(in_model_order(folded), in_model_order(kept))


def remaining_placements(model: nn.Module) -> list[dict]:
    """Explicit placement dicts that rebuild the implicit modules still in ``model``.

    One dict per module, in hook order per module and side, with the same keys as
    before (``<path>.implicit_<side>_<op>``), so a fused state dict loads exactly.
    """
    entries = []
    for host_path, host in model.named_modules():
        for side in ("input", "output"):
            for _, implicit in implicit_hooks(host, side):
                if isinstance(implicit, ImplicitC):  # a forward hook of the widened layer
                    item = dict(path=host_path, side="input", operators=["concat"],
                                concat_channels=implicit.channels)
                else:
                    item = dict(path=host_path, side=side, operators=[implicit.operator], channels=implicit.channels,
                                channel_axis=implicit.channel_axis)
                item.update(implicit.modeling_kwargs())
                entries.append(item)
    return entries


def deploy_model_cfg(model_cfg: dict, model: nn.Module) -> dict:
    """The model config of a fused model: kept implicits as explicit paths, or none."""
    base, spec = split_yolor_cfg(model_cfg)
    placements = remaining_placements(model)
    if spec is None or not placements:
        return base
    detector = base.pop("type")
    implicit = spec.to_config()
    implicit["placements"] = placements
    return dict(type=YOLOR_TYPE, detector=detector, implicit=implicit, **base)


def _resolve_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        from yolor_ray.registry import CHECKPOINT_FILE

        candidates = [path / CHECKPOINT_FILE] + sorted(path.glob("*.pth"))
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"no checkpoint ({CHECKPOINT_FILE} or *.pth) in folder {str(path)!r}")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    return path


def _load_cfg(config_or_cfg: Any, checkpoint: dict, checkpoint_path: Path):
    from mmengine.config import Config

    if isinstance(config_or_cfg, Config):
        return config_or_cfg
    if config_or_cfg is not None:
        from yolor_ray.config import load_config

        return load_config(config_or_cfg)
    text = (checkpoint.get("meta") or {}).get("cfg")
    if not isinstance(text, str):
        raise ValueError(f"checkpoint {str(checkpoint_path)!r} holds no config (meta.cfg); pass the config file")
    return Config.fromstring(text, ".py")


def fuse_checkpoint(config_or_cfg: Any, checkpoint_in: str | Path, out: str | Path) -> FuseResult:
    """Load a YOLOR checkpoint, fuse it and write a deploy checkpoint and config to ``out``.

    ``config_or_cfg``: a config file, an MMEngine ``Config``, or None to use the config
    MMEngine stored in the checkpoint (``meta.cfg``). ``checkpoint_in``: a ``.pth`` file
    or a folder holding one (a Ray Train checkpoint folder). ``out``: a folder, created;
    it receives ``deploy.pth`` (state dict + meta), ``deploy.py`` (the config with the
    folded implicit placements removed and the kept ones as explicit paths) and
    ``fuse_report.json``.
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from yolor_ray.checkpoint import load_checkpoint_file
    from yolor_ray.implicit.weights import load_weights

    checkpoint_path = _resolve_checkpoint(checkpoint_in)
    checkpoint = load_checkpoint_file(checkpoint_path)
    cfg = _load_cfg(config_or_cfg, checkpoint, checkpoint_path)
    register_all_modules(init_default_scope=False)
    model = MODELS.build(cfg.model)
    if not any(True for _ in implicit_modules(model)):
        raise ValueError(f"the model of this config ({cfg.model.get('type')}) has no implicit modules: nothing "
                         "to fuse; pass the YOLOR config the checkpoint was trained with")
    report = load_weights(model, checkpoint)
    if report.missing_implicit:
        raise ValueError(f"checkpoint {str(checkpoint_path)!r} lacks the implicit parameters of this config "
                         f"({report.summary()}); is it a baseline checkpoint?")
    model.eval()
    fuse = fuse_implicit(model)

    cfg.model = deploy_model_cfg(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model), model)
    if cfg.model.get("type") != YOLOR_TYPE and (cfg.get("optim_wrapper") or {}).get("constructor") == \
            "YOLOROptimWrapperConstructor":
        cfg.optim_wrapper.pop("constructor")  # fully folded: the plain baseline's config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(checkpoint.get("meta") or {})
    deploy_meta = {k: meta[k] for k in ("dataset_meta", "epoch", "iter") if k in meta}
    deploy_meta.update(cfg=cfg.pretty_text, fused_from=str(checkpoint_path))
    result = FuseResult(out / DEPLOY_CHECKPOINT, out / DEPLOY_CONFIG, out / FUSE_REPORT, fuse)
    torch.save(dict(state_dict=model.state_dict(), meta=deploy_meta), result.checkpoint)
    cfg.dump(str(result.config))
    result.report_file.write_text(json.dumps(fuse.to_dict(), indent=1))
    return result
