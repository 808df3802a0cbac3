"""A search space as a user gives it, read and validated into a :class:`SearchSpace`.

A space is a mapping (a YAML file, a Python file defining ``space = dict(...)``, or
flags). Each key holds a list of choices, a range, or one fixed value::

    placements: [[fpn], [pred], [fpn, pred]]      # subsets of the placement vocabulary
    operators:                                     # per placement, lists of operators
      pred: [[multiply], [multiply, add]]
    modeling: [vector, nn, mf]
    atoms: [2, 4]                                  # K, used by mf
    dim: [8, 16]                                   # D, used by nn
    init:
      add_std: [0.01, 0.02]
      multiply_std: {loguniform: [0.005, 0.05]}
    lr: {loguniform: [0.005, 0.02]}                # optim_wrapper.optimizer.lr

A key left out keeps the config's own setting.
"""
from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Mapping

import yaml

from yolor_ray import paths
from yolor_ray.implicit.modules import MODELINGS, OPERATORS
from yolor_ray.implicit.spec import PLACEMENTS
from yolor_ray.tune.space import JOIN, MODELING_PARAMS, Dimension, SearchSpace, SpaceError

KEYS = ("placements", "operators", "modeling", "atoms", "dim", "init", "lr")
INIT_KEYS = tuple(f"{op}_{stat}" for op in OPERATORS for stat in ("mean", "std"))
RANGES = ("uniform", "loguniform")

# What a sweep searches when given no space: the paper's two uses, alone and together,
# how z is modelled, and the spread of its initialisation.
DEFAULT_SPACE = dict(
    placements=[["fpn"], ["pred"], ["fpn", "pred"]],
    modeling=["vector", "mf"],
    init=dict(add_std=[0.01, 0.02, 0.05], multiply_std=[0.01, 0.02, 0.05]),
)


def load_space_file(path: str | Path) -> dict:
    """A space from YAML (``.yaml``/``.yml``) or Python (``space = dict(...)``)."""
    path = paths.input_file(path, "search space file", SpaceError)
    if path.suffix not in (".yaml", ".yml", ".py"):
        raise SpaceError(f"search space file {str(path)!r} must be YAML (.yaml, .yml) or Python (.py)")
    text = paths.read_text(path, "search space file", SpaceError)
    try:
        if path.suffix == ".py":
            scope: dict[str, Any] = {}
            exec(compile(text, str(path), "exec"), scope)  # the user's own file, like an MMEngine config
            if "space" not in scope:
                raise SpaceError(f"search space file {str(path)!r} must define `space = dict(...)`")
            raw = scope["space"]
        else:
            raw = yaml.safe_load(text)
    except SpaceError:
        raise
    except Exception as err:  # a YAML or Python syntax error, in the user's words, on one line
        raise SpaceError(f"search space file {str(path)!r} could not be read: {type(err).__name__}: "
                         f"{' '.join(str(err).split())}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpaceError(f"search space file {str(path)!r} must hold a mapping of keys ({', '.join(KEYS)}), "
                         f"got {type(raw).__name__}")
    return dict(raw)


def parse_space(raw: Mapping, available: tuple[str, ...] = tuple(PLACEMENTS)) -> SearchSpace:
    """Validate a space against itself and against the placements the detector has."""
    if not raw:
        raise SpaceError("the search space is empty: give at least one of " + ", ".join(KEYS))
    _unknown(raw, KEYS, "search space")
    dims: list[Dimension] = []

    if "placements" in raw:
        subsets = _choices(raw["placements"], "placements")
        for subset in subsets:
            names = [subset] if isinstance(subset, str) else subset
            if not isinstance(names, (list, tuple)) or not names:
                raise SpaceError(f"placements: each choice is a non-empty list of placement names, got {subset!r}")
            for name in names:
                if name not in available:
                    hint = difflib.get_close_matches(str(name), available, n=1)
                    raise SpaceError(f"placements: {name!r} is not a placement of this detector"
                                     + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                     + f"; valid here: {', '.join(available)}")
            if len(set(names)) != len(names):
                raise SpaceError(f"placements: {list(names)!r} names a placement twice")
        dims.append(_categorical("placements", [JOIN.join(s) if not isinstance(s, str) else s for s in subsets]))
    searched = {name for d in dims for v in d.choices for name in v.split(JOIN)} if dims else None

    operators = raw.get("operators")
    if operators is not None:
        if not isinstance(operators, Mapping) or not operators:
            raise SpaceError(f"operators: a mapping of placement to operator lists, e.g. "
                             f"{{pred: [[multiply], [multiply, add]]}}, got {operators!r}")
        for name, lists in operators.items():
            if name not in PLACEMENTS:
                raise SpaceError(f"operators: {name!r} is not a placement; valid: {', '.join(PLACEMENTS)}")
            if searched is not None and name not in searched:
                raise SpaceError(f"operators: given for {name!r}, which no placements choice includes "
                                 f"(choices: {', '.join(dims[0].choices)})")
            values = []
            for ops in _choices(lists, f"operators.{name}"):
                ops = [ops] if isinstance(ops, str) else ops
                if not isinstance(ops, (list, tuple)) or not ops or any(op not in OPERATORS for op in ops):
                    raise SpaceError(f"operators.{name}: each choice is a non-empty list of {', '.join(OPERATORS)}, "
                                     f"got {ops!r}")
                if len(set(ops)) != len(ops):
                    raise SpaceError(f"operators.{name}: {list(ops)!r} names an operator twice")
                values.append(JOIN.join(ops))
            dims.append(_categorical(f"operators.{name}", values))

    modelings = None
    if "modeling" in raw:
        modelings = _choices(raw["modeling"], "modeling")
        for m in modelings:
            if m not in MODELINGS:
                raise SpaceError(f"modeling: unknown {m!r}; valid: {', '.join(MODELINGS)}")
        dims.append(_categorical("modeling", modelings))
    for key, needs in MODELING_PARAMS.items():
        if key in raw:
            values = _choices(raw[key], key)
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
                raise SpaceError(f"{key}: choices must be ints >= 1, got {values!r}")
            if modelings is not None and needs not in modelings:
                raise SpaceError(f"{key}: searched, but it only matters with modeling {needs!r}, which the "
                                 f"modeling choices ({', '.join(modelings)}) leave out")
            dims.append(_categorical(key, values))

    if "init" in raw:
        init = raw["init"]
        if not isinstance(init, Mapping) or not init:
            raise SpaceError(f"init: a mapping like {{add_std: [0.01, 0.02]}}, got {init!r}")
        _unknown(init, INIT_KEYS, "init")
        used_ops = _operators_in_use(dims)
        for key, value in init.items():
            op, stat = key.rsplit("_", 1)
            if used_ops is not None and op not in used_ops:
                raise SpaceError(f"init.{key}: searched, but no variant of this space uses the {op!r} operator")
            dim = _numeric(f"init.{key}", value, positive=(stat == "std"))
            dims.append(dim)
    if "lr" in raw:
        dims.append(_numeric("lr", raw["lr"], positive=True))
    return SearchSpace(tuple(dims))


def _operators_in_use(dims: list[Dimension]) -> set[str] | None:
    """Operators some variant uses; None when the config's own placements decide."""
    placements = next((d for d in dims if d.key == "placements"), None)
    if placements is None:
        return None
    used = set()
    for subset in placements.choices:
        for name in subset.split(JOIN):
            searched = next((d for d in dims if d.key == f"operators.{name}"), None)
            if searched is None:
                used.update(PLACEMENTS[name])
            else:
                used.update(op for value in searched.choices for op in value.split(JOIN))
    return used


def _unknown(raw: Mapping, valid: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in valid:
            hint = difflib.get_close_matches(str(key), valid, n=1)
            raise SpaceError(f"{where}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; valid keys: {', '.join(valid)}")


def _choices(value: Any, key: str) -> list:
    """A list of choices; a single value counts as one choice."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise SpaceError(f"{key}: an empty list of choices leaves nothing to search")
        return list(value)
    if isinstance(value, Mapping):
        raise SpaceError(f"{key}: takes a list of choices, not a range ({value!r})")
    return [value]


def _categorical(key: str, values: list) -> Dimension:
    frozen = [tuple(v) if isinstance(v, list) else v for v in values]
    if len(set(frozen)) != len(frozen):
        raise SpaceError(f"{key}: a choice appears twice in {values!r}")
    return Dimension(key, choices=tuple(values))


def _numeric(key: str, value: Any, positive: bool) -> Dimension:
    low_ok = (lambda v: v > 0) if positive else (lambda v: True)
    need = "> 0" if positive else "a number"
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in RANGES:
            raise SpaceError(f"{key}: a range is {{uniform: [low, high]}} or {{loguniform: [low, high]}}, "
                             f"got {dict(value)!r}")
        kind, ends = next(iter(value.items()))
        if not isinstance(ends, (list, tuple)) or len(ends) != 2 or not all(_is_number(v) for v in ends):
            raise SpaceError(f"{key}: {kind} needs [low, high], got {ends!r}")
        low, high = map(float, ends)
        if not low < high:
            raise SpaceError(f"{key}: {kind} range [{low:g}, {high:g}] is empty (low must be < high)")
        if kind == "loguniform" and low <= 0:
            raise SpaceError(f"{key}: loguniform needs low > 0, got {low:g}")
        if not low_ok(low):
            raise SpaceError(f"{key}: values must be {need}, the range starts at {low:g}")
        return Dimension(key, low=low, high=high, log=kind == "loguniform")
    values = _choices(value, key)
    for v in values:
        if not _is_number(v) or not low_ok(v):
            raise SpaceError(f"{key}: choices must be numbers{' > 0' if positive else ''}, got {v!r}")
    return _categorical(key, [float(v) for v in values])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["DEFAULT_SPACE", "load_space_file", "parse_space"]
