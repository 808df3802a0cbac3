"""Attach implicit modules to a built detector, without touching its classes or keys.

Each implicit module becomes a child of the module it acts on (its parameters are
saved as ``<path>.implicit_<side>_<op>.*``: the detector's own keys do not change,
so a baseline checkpoint loads with only these missing) and is applied by a forward
hook (``output``) or forward pre-hook (``input``) on that module. The hooks are bound
methods of the implicit modules: ``copy.deepcopy`` and pickling carry them over to the
copied child, and DDP, which calls the wrapped module, runs them unchanged.

``concat`` widens a conv / linear layer: its :class:`ImplicitC` hangs under that layer
(``<layer>.implicit_in_cat``, with the extra input-channel weights ``w_cat``) and adds
the extra channels' contribution to the layer's output, before any other hook.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from torch import nn

from yolor_ray.implicit.errors import PlacementError
from yolor_ray.implicit.layers import input_layer, layer_path
from yolor_ray.implicit.modules import Implicit, ImplicitC, make_implicit
from yolor_ray.implicit.placements import resolve_placement
from yolor_ray.implicit.sites import Site, get_module
from yolor_ray.implicit.spec import ImplicitSpec, PlacementSpec

PREFIX = "implicit_"
SIDE_SHORT = {"input": "in", "output": "out"}
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Attached:
    """One implicit module, where it went and what it costs."""

    placement: str
    path: str           # the implicit module's own path (its state-dict prefix)
    host: str           # the module whose input / output it acts on
    side: str
    operator: str
    num_params: int


def child_name(side: str, operator_short: str) -> str:
    return f"{PREFIX}{SIDE_SHORT[side]}_{operator_short}"


def is_implicit_key(key: str) -> bool:
    """Whether a state-dict key belongs to an implicit module."""
    return any(part.startswith(PREFIX) for part in key.split("."))


def implicit_modules(model: nn.Module) -> Iterator[tuple[str, Implicit]]:
    for name, module in model.named_modules():
        if isinstance(module, Implicit):
            yield name, module


def count_implicit_params(model: nn.Module) -> int:
    return sum(m.num_implicit_params() for _, m in implicit_modules(model))


def attach_implicit(model: nn.Module, spec: ImplicitSpec) -> list[Attached]:
    """Add the spec's implicit modules and hooks to ``model`` (in place)."""
    if not isinstance(spec, ImplicitSpec):
        raise TypeError(f"attach_implicit needs an ImplicitSpec, got {type(spec).__name__}")
    if any(True for _ in implicit_modules(model)):
        raise PlacementError(f"{type(model).__name__} already holds implicit modules; attach once")
    attached: list[Attached] = []
    for placement in spec.placements:
        for site in resolve_placement(model, placement):
            for operator in placement.operators:
                attached.append(_attach_one(model, spec, placement, site, operator))
    return attached


def _module_kwargs(spec: ImplicitSpec, placement: PlacementSpec, operator: str) -> dict:
    init = spec.init.for_operator(operator)
    return dict(modeling=placement.modeling or spec.modeling, atoms=placement.atoms or spec.atoms,
                dim=placement.dim or spec.dim, mean=init.mean, std=init.std)


def _attach_one(model: nn.Module, spec: ImplicitSpec, placement: PlacementSpec, site: Site,
                operator: str) -> Attached:
    module = get_module(model, site.path)
    if isinstance(module, CONTAINERS) or isinstance(module, Implicit):
        raise PlacementError(f"implicit placement {placement.label!r}: {site.path} is a {type(module).__name__}; "
                             "name one of its layers instead")
    kwargs = _module_kwargs(spec, placement, operator)
    if operator == "concat":
        if site.side != "input":
            raise PlacementError(
                f"operator 'concat' adds channels, so it needs a layer built for them: only input sides of "
                f"conv / linear layers take it (placement 'head_in', or dict(path=..., side='input')); "
                f"placement {placement.label!r} acts on the {site.side} of {site.path}")
        layer = input_layer(module)
        if layer is None or (isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros")):
            raise PlacementError(f"operator 'concat' at the input of {site.path} ({type(module).__name__}) needs a "
                                 "Conv2d (groups=1, zero padding) or Linear layer reading that input")
        host, host_path = layer, layer_path(site.path, module, layer)
        implicit = ImplicitC(placement.concat_channels or spec.concat_channels, channel_axis=site.channel_axis,
                             **kwargs)
        implicit.bind(layer)
    else:
        host, host_path = module, site.path
        implicit = make_implicit(operator, site.channels, channel_axis=site.channel_axis, **kwargs)
    name = child_name(site.side, implicit.short)
    if name in host._modules:
        owner = host._modules[name].placement
        raise PlacementError(f"implicit placement {placement.label!r} puts a second {operator!r} at the {site.side} "
                             f"of {host_path} (placement {owner!r} put one there already)")
    implicit.side = site.side
    implicit.placement = placement.label
    implicit.consumer = site.consumer
    implicit.consumer_flatten = site.consumer_flatten
    host.add_module(name, implicit)
    if operator == "concat":
        host.register_forward_hook(implicit.layer_hook, prepend=True)
    elif site.side == "output":
        host.register_forward_hook(implicit.output_hook)
    else:
        host.register_forward_pre_hook(implicit.input_hook)
    return Attached(placement.label, f"{host_path}.{name}", host_path, site.side, operator,
                    implicit.num_implicit_params())


def implicit_hooks(host: nn.Module, side: str) -> list[tuple[int, Implicit]]:
    """(hook id, implicit module) of the implicit hooks on one side of ``host``, in call order.

    Output side: ``layer_hook`` (concat, on the widened layer) and ``output_hook``.
    """
    hooks = host._forward_pre_hooks if side == "input" else host._forward_hooks
    found = []
    for hook_id, hook in hooks.items():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, Implicit):
            found.append((hook_id, owner))
    return found


def detach_implicit(host: nn.Module, implicit: Implicit) -> None:
    """Remove one implicit module and its hook from ``host``."""
    for hooks in (host._forward_pre_hooks, host._forward_hooks):
        for hook_id in [k for k, h in hooks.items() if getattr(h, "__self__", None) is implicit]:
            del hooks[hook_id]
            for extra in (host._forward_hooks_with_kwargs, host._forward_hooks_always_called,
                          host._forward_pre_hooks_with_kwargs):
                extra.pop(hook_id, None)
    for name, child in list(host._modules.items()):
        if child is implicit:
            del host._modules[name]
