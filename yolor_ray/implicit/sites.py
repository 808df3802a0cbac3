"""A site: one module of a built detector, the side an implicit tensor acts on, its channels.

Every way of resolving placements (the graph rules, the name rules, an explicit path)
ends in :class:`Site` values built here, so they live below all of them; reading a
layer's channel count is shared the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from yolor_ray.implicit.errors import PlacementError


@dataclass(frozen=True)
class Site:
    """One module of a built detector that implicit tensors act on.

    ``consumer``: for an output whose module cannot absorb a constant (an RoI extractor),
    the one layer that reads it, so fusion can fold into that layer's input instead;
    ``consumer_flatten``: the consumer reads the output flattened to ``(N, C*H*W)``.
    """

    placement: str
    path: str
    side: str
    channels: int
    channel_axis: int
    consumer: str | None = None
    consumer_flatten: bool = False


def get_module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        parent, _, last = path.rpartition(".")
        try:
            children = [n for n, _ in (model.get_submodule(parent) if parent else model).named_children()]
        except AttributeError:
            children = []
        hint = f"; children of {parent or 'the model'}: {', '.join(children)}" if children else ""
        raise PlacementError(f"implicit placement path {path!r} is not a module of {type(model).__name__}"
                             f"{hint}") from None


def is_layer(module: nn.Module) -> bool:
    """A conv / linear-like layer: its own ``weight`` and an input channel count."""
    return module._parameters.get("weight") is not None and any(
        isinstance(getattr(module, name, None), int) for name in ("in_channels", "in_features"))


def channels_of(module: nn.Module, side: str) -> int | None:
    """Channel count at one side of a layer, when the layer says."""
    names = ("in_channels", "in_features") if side == "input" else ("out_channels", "out_features")
    for inner in (module, getattr(module, "conv", None)):
        for name in names:
            value = getattr(inner, name, None) if inner is not None else None
            if isinstance(value, int):
                return value
    return None


def channel_axis_of(module: nn.Module) -> int:
    return -1 if isinstance(module, (nn.Linear, nn.LayerNorm)) else 1


def make_site(placement: str, path: str, module: nn.Module, side: str, **kwargs) -> Site:
    """The site of ``module``, its channels read from the layer (PlacementError when it does not say)."""
    channels = channels_of(module, side)
    if channels is None:
        raise PlacementError(f"placement {placement!r}: cannot tell the channels of {path} ({type(module).__name__})")
    return Site(placement, path, side, channels, channel_axis_of(module), **kwargs)
