"""The implicit settings of a YOLOR model, validated once from the config dict.

In a config::

    model = dict(
        type='YOLOR', detector='ATSS',            # the base detector's registered type
        implicit=dict(
            placements=['fpn', 'pred'],           # vocabulary names (see placements.py) ...
            # ... or dicts: dict(name='pred', operators=['multiply', 'add'])
            #               dict(path='bbox_head.cls_convs.0', side='input', operators=['multiply'])
            modeling='vector',                    # 'vector' | 'nn' | 'mf'
            atoms=4,                              # K, for 'mf'
            dim=16,                               # D, for 'nn'
            init=dict(add=dict(mean=0.0, std=0.02), multiply=dict(mean=1.0, std=0.02),
                      concat=dict(mean=0.0, std=0.02)),
            concat_channels=8,                    # C of an ImplicitC
            weight_decay=False,                   # implicit tensors out of weight decay (YOLOR's recipe)
        ),
        ...)                                      # every other key: the base detector's

Every key is optional; ``implicit=dict()`` is the paper's iFA + iPR (fpn add, pred
multiply) with vector modeling and the paper's init.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from yolor_ray.implicit.errors import ImplicitConfigError
from yolor_ray.implicit.modules import (
    DEFAULT_ATOMS,
    DEFAULT_DIM,
    DEFAULT_MEANS,
    DEFAULT_STD,
    MODELINGS,
    OPERATORS,
    check_init,
    check_modeling,
    check_positive_int,
)

# The vocabulary, with each placement's default operators (paper: addition aligns
# features, multiplication refines predictions).
PLACEMENTS: dict[str, tuple[str, ...]] = {
    "fpn": ("add",),
    "pred": ("multiply",),
    "rpn": ("add",),
    "roi": ("add",),
    "head_in": ("add",),
}
DEFAULT_PLACEMENTS = ("fpn", "pred")
SIDES = ("input", "output")
DEFAULT_CONCAT_CHANNELS = 8


def _unknown_keys(given: Mapping, valid: tuple[str, ...], where: str) -> None:
    for key in given:
        if key not in valid:
            hint = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            raise ImplicitConfigError(
                f"{where}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; valid keys: {', '.join(valid)}")


def _operators(value: Any, where: str) -> tuple[str, ...]:
    ops = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
    if not ops:
        raise ImplicitConfigError(
            f"{where} must be an operator name or a non-empty list of them "
            f"({', '.join(OPERATORS)}), got {value!r}")
    for op in ops:
        if op not in OPERATORS:
            raise ImplicitConfigError(f"{where}: unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")
    if len(set(ops)) != len(ops):
        raise ImplicitConfigError(f"{where} names an operator twice: {list(ops)!r}")
    return ops


@dataclass(frozen=True)
class InitSpec:
    """The distribution each channel of an implicit tensor starts from."""

    mean: float
    std: float = DEFAULT_STD

    def __post_init__(self):
        mean, std = check_init(self.mean, self.std, "InitSpec")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)


@dataclass(frozen=True)
class InitsSpec:
    """Init per operator; paper defaults: add / concat N(0, 0.02), multiply N(1, 0.02)."""

    add: InitSpec = InitSpec(DEFAULT_MEANS["add"])
    multiply: InitSpec = InitSpec(DEFAULT_MEANS["multiply"])
    concat: InitSpec = InitSpec(DEFAULT_MEANS["concat"])

    @classmethod
    def from_config(cls, value: Any) -> "InitsSpec":
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ImplicitConfigError(
                f"ImplicitSpec(init) must be a dict like dict(add=dict(mean=0.0, std=0.02)), "
                f"got {value!r}")
        _unknown_keys(value, OPERATORS, "ImplicitSpec(init)")
        kwargs = {}
        for op, item in value.items():
            if not isinstance(item, Mapping):
                raise ImplicitConfigError(f"ImplicitSpec(init.{op}) must be a dict with mean and/or std, got {item!r}")
            _unknown_keys(item, ("mean", "std"), f"ImplicitSpec(init.{op})")
            try:
                kwargs[op] = InitSpec(mean=item.get("mean", DEFAULT_MEANS[op]), std=item.get("std", DEFAULT_STD))
            except ValueError as err:
                raise ImplicitConfigError(str(err).replace("InitSpec(", f"ImplicitSpec(init.{op}.")) from None
        return cls(**kwargs)

    def for_operator(self, operator: str) -> InitSpec:
        return getattr(self, operator)


@dataclass(frozen=True)
class PlacementSpec:
    """One entry of ``placements``: a vocabulary name, or an explicit module path.

    ``name``: one of :data:`PLACEMENTS`. ``path``: a dotted module path of the built
    detector (``'bbox_head.cls_convs.0'``) with ``side`` (``'input'`` or ``'output'``).
    ``operators``: applied in order (``('multiply', 'add')`` is ``x * m + a``); empty
    means the placement's default. ``modeling``, ``atoms``, ``dim``: override the
    spec-wide ones. ``channels``, ``channel_axis``: for a path whose module does not say
    (no ``in_channels`` / ``out_channels`` / ``in_features`` / ``out_features``).
    """

    name: str | None = None
    path: str | None = None
    side: str | None = None
    operators: tuple[str, ...] = ()
    modeling: str | None = None
    atoms: int | None = None
    dim: int | None = None
    channels: int | None = None
    channel_axis: int | None = None
    concat_channels: int | None = None

    KEYS = ("name", "path", "side", "operators", "modeling", "atoms", "dim", "channels", "channel_axis",
            "concat_channels")

    def __post_init__(self):
        if (self.name is None) == (self.path is None):
            raise ImplicitConfigError(
                f"PlacementSpec needs exactly one of name (a placement: {', '.join(PLACEMENTS)}) or "
                f"path (a module path with side='input' or 'output'), got name={self.name!r}, "
                f"path={self.path!r}")
        if self.name is not None:
            if self.name not in PLACEMENTS:
                hint = difflib.get_close_matches(str(self.name), list(PLACEMENTS), n=1)
                raise ImplicitConfigError(
                    f"unknown implicit placement {self.name!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; valid placements: {', '.join(PLACEMENTS)}, or dict(path=..., side=...)")
            for key in ("side", "channels", "channel_axis"):
                if getattr(self, key) is not None:
                    raise ImplicitConfigError(
                        f"PlacementSpec({key}) goes with a path, not with placement {self.name!r}")
        else:
            if not isinstance(self.path, str) or not self.path or self.path.startswith(".") or ".." in self.path:
                raise ImplicitConfigError(
                    f"PlacementSpec(path) must be a dotted module path like 'neck.fpn_convs.0', "
                    f"got {self.path!r}")
            if self.side not in SIDES:
                raise ImplicitConfigError(
                    f"PlacementSpec(side) for path {self.path!r} must be one of {', '.join(SIDES)}, "
                    f"got {self.side!r}")
            if self.channels is not None:
                check_positive_int(self.channels, "PlacementSpec(channels)")
            if self.channel_axis is not None and (not isinstance(self.channel_axis, int)
                                                  or isinstance(self.channel_axis, bool)):
                raise ImplicitConfigError(f"PlacementSpec(channel_axis) must be an int, got {self.channel_axis!r}")
        if self.operators:
            ops = _operators(self.operators, "PlacementSpec(operators)")
        elif self.name is not None:
            ops = PLACEMENTS[self.name]
        else:
            raise ImplicitConfigError(
                f"PlacementSpec(operators) must be given with a path ({self.path!r}); "
                f"valid operators: {', '.join(OPERATORS)}")
        object.__setattr__(self, "operators", tuple(ops))
        if self.modeling is not None:
            check_modeling(self.modeling, "PlacementSpec(modeling)")
        for key in ("atoms", "dim", "concat_channels"):
            if getattr(self, key) is not None:
                check_positive_int(getattr(self, key), f"PlacementSpec({key})")

    @classmethod
    def from_config(cls, value: Any) -> "PlacementSpec":
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            _unknown_keys(value, cls.KEYS, f"implicit placement {dict(value)!r}")
            return cls(**dict(value))
        raise ImplicitConfigError(
            f"an implicit placement must be a name ({', '.join(PLACEMENTS)}) or a dict, got {value!r}")

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"{self.path}:{self.side}"

    def to_config(self) -> str | dict:
        if self.name is not None and self == PlacementSpec(name=self.name):
            return self.name
        out = {k: getattr(self, k) for k in self.KEYS if getattr(self, k) is not None}
        out["operators"] = list(self.operators)
        return out


@dataclass(frozen=True)
class ImplicitSpec:
    """Where implicit knowledge goes in a detector and how it is modelled."""

    placements: tuple[PlacementSpec, ...] = tuple(PlacementSpec(name=n) for n in DEFAULT_PLACEMENTS)
    modeling: str = "vector"
    atoms: int = DEFAULT_ATOMS
    dim: int = DEFAULT_DIM
    init: InitsSpec = field(default_factory=InitsSpec)
    concat_channels: int = DEFAULT_CONCAT_CHANNELS
    # YOLOR's recipe: implicit tensors in the no-decay group (decay would pull an ImplicitM's
    # z toward 0 rather than its init 1); True gives them the optimizer's weight decay.
    weight_decay: bool = False

    KEYS = ("placements", "modeling", "atoms", "dim", "init", "concat_channels", "weight_decay")

    def __post_init__(self):
        if not isinstance(self.placements, tuple) or not all(isinstance(p, PlacementSpec) for p in self.placements):
            raise ImplicitConfigError(
                f"ImplicitSpec(placements) must be a tuple of PlacementSpec, got {self.placements!r}")
        if not self.placements:
            raise ImplicitConfigError(
                f"ImplicitSpec(placements) must name at least one placement ({', '.join(PLACEMENTS)}, "
                "or dict(path=..., side=...)); for no implicit knowledge use the baseline config")
        check_modeling(self.modeling, "ImplicitSpec(modeling)")
        check_positive_int(self.atoms, "ImplicitSpec(atoms)")
        check_positive_int(self.dim, "ImplicitSpec(dim)")
        check_positive_int(self.concat_channels, "ImplicitSpec(concat_channels)")
        if not isinstance(self.weight_decay, bool):
            raise ImplicitConfigError(f"ImplicitSpec(weight_decay) must be True or False, got {self.weight_decay!r}")
        if not isinstance(self.init, InitsSpec):
            raise ImplicitConfigError(f"ImplicitSpec(init) must be an InitsSpec, got {self.init!r}")

    @classmethod
    def from_config(cls, value: Any = None) -> "ImplicitSpec":
        """From the ``implicit=dict(...)`` of a model config (None: the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, ImplicitSpec):
            return value
        if not isinstance(value, Mapping):
            raise ImplicitConfigError(f"implicit settings must be a dict, got {type(value).__name__}: {value!r}")
        _unknown_keys(value, cls.KEYS, "ImplicitSpec")
        kwargs: dict[str, Any] = {k: v for k, v in value.items() if k not in ("placements", "init")}
        if "placements" in value:
            placements = value["placements"]
            if isinstance(placements, (str, Mapping)):
                placements = [placements]
            if not isinstance(placements, (list, tuple)):
                raise ImplicitConfigError(
                    f"ImplicitSpec(placements) must be a list of placement names or dicts, "
                    f"got {placements!r}")
            kwargs["placements"] = tuple(PlacementSpec.from_config(p) for p in placements)
        kwargs["init"] = InitsSpec.from_config(value.get("init"))
        return cls(**kwargs)

    def to_config(self) -> dict:
        return dict(placements=[p.to_config() for p in self.placements], modeling=self.modeling, atoms=self.atoms,
                    dim=self.dim, init={op: asdict(self.init.for_operator(op)) for op in OPERATORS},
                    concat_channels=self.concat_channels, weight_decay=self.weight_decay)


__all__ = ["DEFAULT_PLACEMENTS", "ImplicitSpec", "InitSpec", "InitsSpec", "MODELINGS", "PLACEMENTS", "PlacementSpec",
           "SIDES"]
