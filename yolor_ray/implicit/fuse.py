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

from dataclasses import asdict, dataclass

import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from yolor_ray.implicit.attach import detach_implicit, implicit_hooks
from yolor_ray.implicit.layers import input_layer, output_layer
from yolor_ray.implicit.modules import Implicit, ImplicitA, ImplicitC, ImplicitM


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


def _conv_module_tail(host: nn.Module) -> str | None:
    """What comes after the conv of an mmcv ConvModule (its norm / activation), if anything."""
    if not isinstance(host, ConvModule):
        return None
    tail = [type(host.norm).__name__ if host.with_norm else None,
            type(host.activate).__name__ if host.with_activation else None]
    return " and ".join(t for t in tail if t) or None


def _why_output_stays(host: nn.Module) -> str:
    tail = _conv_module_tail(host)
    if tail is not None:
        return (f"after the {tail} of {type(host).__name__}: a constant there does not fold into its "
                f"{type(host.conv).__name__}, and no single plain layer reads it")
    if isinstance(host, (nn.Conv2d, nn.Linear)):
        return (f"{type(host).__name__} is not a plain conv / linear (it transforms its weight or samples its "
                "input): scaling its weight would not scale its output")
    return (f"no plain conv / linear layer produces the output of {type(host).__name__}, and no single plain "
            "layer reads it")


def _why_input_stays(host: nn.Module) -> str:
    if isinstance(host, ConvModule) and host.order[0] != "conv":
        return f"{type(host).__name__} applies its {host.order[0]} before its conv"
    if isinstance(host, ConvModule) and host.with_explicit_padding:
        return f"{type(host).__name__} pads explicitly before its conv"
    if isinstance(host, (nn.Conv2d, nn.Linear)) or isinstance(getattr(host, "conv", None), nn.Conv2d):
        return (f"{type(getattr(host, 'conv', host)).__name__} is not a plain conv / linear (it transforms its "
                "weight or samples its input): scaling its weight would not scale its input")
    return f"the input of {type(host).__name__} is not read by a plain conv / linear layer"


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
            reason = _why_input_stays(host)
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
                    reason = _why_output_stays(host)
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
