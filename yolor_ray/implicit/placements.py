"""The placement vocabulary, resolved on a *built* detector to the modules it acts on (sites).

Each name has one resolver (:data:`RESOLVERS`). ``fpn`` (every output level of the neck),
``pred`` (the final prediction layers of every head) and ``head_in`` (the input of the
first layer of every head branch) come from the detector's traced graph (:mod:`.trace`
runs it, :mod:`.rules` reads it), or by name when no trace runs; ``rpn`` and ``roi`` come
by name only (:mod:`.by_name`). :func:`resolution_of` says which way a model went and why.
A placement dict (``dict(path=..., side=..., operators=[...])``) names any module instead.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

from torch import nn

from yolor_ray.implicit.by_name import fallback_sites, roi_by_name, rpn_by_name
from yolor_ray.implicit.errors import PlacementError
from yolor_ray.implicit.rules import structural_sites
from yolor_ray.implicit.sites import Site, channel_axis_of, channels_of, get_module, make_site
from yolor_ray.implicit.spec import PlacementSpec
from yolor_ray.implicit.trace import Trace, initialised_copy, is_implicit, restoring

TRACE_SIZES = (64, 224, 320)  # synthetic image sizes tried in turn (DINO: 900 queries; DDOD: DCN on P7)


@dataclass(frozen=True)
class Resolution:
    """How the vocabulary was resolved on one model. ``method``: ``'loss'`` or ``'tensor'``
    (the traced mode), ``'loss (initialised copy)'`` (the loss of a copy after the detector's
    own ``init_weights``, tried last) or ``'names'`` (no trace ran: the name rules);
    ``sites``: ``fpn``, ``pred`` and ``head_in`` to their sites; ``error``: why the attempts
    before it failed (None when the first one ran)."""

    method: str
    sites: dict
    error: str | None = None


_RESOLUTIONS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Resolution]]" = weakref.WeakKeyDictionary()


def _signature(model: nn.Module) -> tuple:
    return tuple(id(m) for m in model.modules() if not is_implicit(m))


def resolution_of(model: nn.Module) -> Resolution:
    """How ``fpn``, ``pred`` and ``head_in`` resolve on ``model``: by its traced structure, else
    by name (traced once per model, then cached)."""
    signature = _signature(model)
    cached = _RESOLUTIONS.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    errors = []
    resolution = None
    attempts = [(m, s, False) for m in ("loss", "tensor") for s in TRACE_SIZES] + [("loss", TRACE_SIZES[-1], True)]
    for mode, size, initialised in attempts:
        # last: a copy with the detector's own init (torch's default can give e.g. Sparse R-CNN
        # proposals of negative size); its module paths and layers are the model's
        subject = initialised_copy(model) if initialised else model
        trace = Trace(subject)
        try:
            with restoring(subject):
                trace.run(mode, size)
                found = structural_sites(trace)
        except Exception as err:  # any failure falls back; the reason is kept
            text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            errors.append(f"{mode} mode at {size}px{' (initialised copy)' if initialised else ''}: "
                          f"{type(err).__name__}: {text}")
            continue
        finally:
            del trace
        if initialised:
            found = {name: [make_site(s.placement, s.path, model.get_submodule(s.path), s.side) for s in sites]
                     for name, sites in found.items()}
        resolution = Resolution(mode + (" (initialised copy)" if initialised else ""), found,
                                "; ".join(errors) or None)
        break
    if resolution is None:
        resolution = Resolution("names", fallback_sites(model), "; ".join(errors))
    _RESOLUTIONS[model] = (signature, resolution)
    return resolution


def _fpn(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["fpn"])


def _pred(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["pred"])


def _head_in(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["head_in"])


# keys: the vocabulary, spec.PLACEMENTS
RESOLVERS = {"fpn": _fpn, "pred": _pred, "rpn": rpn_by_name, "roi": roi_by_name, "head_in": _head_in}


def available_placements(model: nn.Module) -> list[str]:
    """The vocabulary names that exist on this detector."""
    return [name for name, resolve in RESOLVERS.items() if resolve(model)]


def resolve_placement(model: nn.Module, placement: PlacementSpec) -> list[Site]:
    """The sites one placement entry acts on; raises PlacementError naming valid ones."""
    if placement.name is not None:
        sites = RESOLVERS[placement.name](model)
        if not sites:
            valid = available_placements(model)
            raise PlacementError(f"implicit placement {placement.name!r} does not exist on {type(model).__name__}; "
                                 f"valid placements for {type(model).__name__}: {', '.join(valid)} "
                                 f"(or dict(path=..., side=...) for any module)")
        return sites
    module = get_module(model, placement.path)
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        raise PlacementError(f"implicit placement {placement.label!r}: {placement.path} is a "
                             f"{type(module).__name__}; name one of its layers instead")
    channels = placement.channels or channels_of(module, placement.side)
    if channels is None:
        raise PlacementError(f"cannot tell the {placement.side} channels of {placement.path} "
                             f"({type(module).__name__}); give channels=... in its placement dict")
    axis = placement.channel_axis if placement.channel_axis is not None else channel_axis_of(module)
    return [Site("path", placement.path, placement.side, channels, axis)]
