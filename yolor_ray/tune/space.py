"""The search space of a sweep: where implicit knowledge goes and how it starts.

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

A key left out keeps the config's own setting. Tune sees a flat space of plain values
(``placements='fpn+pred'``, ``operators.pred='multiply+add'``), which every searcher
handles; :func:`implicit_of` turns a sampled variant back into ``implicit=dict(...)``.
"""
from __future__ import annotations

import difflib
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from ray import tune

from yolor_ray import paths
from yolor_ray.errors import UserError
from yolor_ray.implicit.modules import MODELINGS, OPERATORS
from yolor_ray.implicit.spec import PLACEMENTS

KEYS = ("placements", "operators", "modeling", "atoms", "dim", "init", "lr")
INIT_KEYS = tuple(f"{op}_{stat}" for op in OPERATORS for stat in ("mean", "std"))
RANGES = ("uniform", "loguniform")
MODELING_PARAMS = {"atoms": "mf", "dim": "nn"}  # searched only where that modeling is
JOIN = "+"  # joins names in one categorical value: 'fpn+pred'

# What a sweep searches when given no space: the paper's two uses, alone and together,
# how z is modelled, and the spread of its initialisation.
DEFAULT_SPACE = dict(
    placements=[["fpn"], ["pred"], ["fpn", "pred"]],
    modeling=["vector", "mf"],
    init=dict(add_std=[0.01, 0.02, 0.05], multiply_std=[0.01, 0.02, 0.05]),
)


class SpaceError(UserError, ValueError):
    """A search space that is empty, malformed or contradicts itself or the config."""


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a list of choices, or a (log-)uniform range."""

    key: str  # flat key as Tune sees it: 'placements', 'operators.pred', 'init.add_std', 'lr'
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def values(self) -> tuple:
        """Every value a variant can take (a range: its two ends)."""
        return self.choices if self.choices is not None else (self.low, self.high)

    def to_tune(self, grid: bool):
        if self.is_range:
            return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)
        if len(self.choices) == 1:
            return self.choices[0]
        return tune.grid_search(list(self.choices)) if grid else tune.choice(list(self.choices))

    def describe(self) -> str:
        if self.is_range:
            return f"{'loguniform' if self.log else 'uniform'}[{self.low:g}, {self.high:g}]"
        return " | ".join(map(str, self.choices))


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    def __getitem__(self, key: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.key == key), None)

    @property
    def has_ranges(self) -> bool:
        return any(d.is_range for d in self.dimensions)

    def num_variants(self) -> int | None:
        """How many distinct variants the space holds; None with a range (infinitely many).
        Variants that differ only in keys that do not act in them (operators of a placement
        left out, atoms without mf, dim without nn, the init of an operator no placement
        applies) count once."""
        if self.has_ranges:
            return None
        return self.num_choice_settings()

    def num_choice_settings(self) -> int:
        """How many distinct settings its lists of choices take (ranges aside), counted as
        :meth:`num_variants` counts them."""
        return sum(math.prod(len(d.choices) for d in acting) for _, acting in self._blocks())

    def choice_setting(self, index: int) -> dict:
        """The ``index``-th distinct setting of the lists of choices, in grid order: every
        choice key, those that do not act in it at their first choice (ranges left out)."""
        return self._setting(self._blocks(), index)

    def pick(self, trials: int, seed: int, grid: bool = False) -> list[dict]:
        """The settings of the lists of choices a sweep of ``trials`` trials trains, distinct
        (:meth:`choice_setting`). Every one in grid order with ``grid``, or when ``trials``
        covers a space without ranges; else ``trials`` of them drawn without replacement,
        seeded by ``seed``. With a range, more trials than settings take every setting once
        per round (each round in its own seeded order), the ranges told apart by sampling."""
        blocks = self._blocks()
        total = sum(math.prod(len(d.choices) for d in acting) for _, acting in blocks)
        if grid or (not self.has_ranges and trials >= total):
            return [self._setting(blocks, i) for i in range(total)]
        rng = random.Random(seed)
        picked: list[int] = []
        while len(picked) < trials:
            picked += rng.sample(range(total), min(total, trials - len(picked)))
        return [self._setting(blocks, i) for i in picked]

    def _setting(self, blocks: list[tuple[dict, tuple[Dimension, ...]]], index: int) -> dict:
        start = index
        for fixed, acting in blocks:
            size = math.prod(len(d.choices) for d in acting)
            if index >= size:
                index -= size
                continue
            setting = dict(fixed)
            for d in reversed(acting):  # the last key changes fastest, as in itertools.product
                index, i = divmod(index, len(d.choices))
                setting[d.key] = d.choices[i]
            return {d.key: setting[d.key] for d in self.dimensions if not d.is_range}
        raise IndexError(f"choice setting {start}: the space holds {start - index}")

    def _blocks(self) -> list[tuple[dict, tuple[Dimension, ...]]]:
        """The lists of choices as blocks of distinct settings: one per distinct setting of the
        keys that decide which others act (placements, modeling, operators), with the
        dimensions that act under it (the rest held at their first choice)."""
        lists = [d for d in self.dimensions if not d.is_range]
        deciders = [d for d in lists if _decides(d.key)]
        blocks, seen = [], set()
        for values in itertools.product(*(d.choices for d in deciders)):
            fixed = {d.key: d.choices[0] for d in lists} | dict(zip((d.key for d in deciders), values))
            acts = _acting(fixed)
            block = tuple((d.key, fixed[d.key]) for d in deciders if d.key in acts)
            if block in seen:  # a decider that does not act here (operators of a placement left out)
                continue
            seen.add(block)
            fixed = {d.key: fixed[d.key] if d.key in acts else d.choices[0] for d in lists}
            blocks.append((fixed, tuple(d for d in lists if d.key in acts and not _decides(d.key))))
        return blocks

    def to_tune(self, grid: bool = False) -> dict:
        if grid and self.has_ranges:
            ranged = ", ".join(d.key for d in self.dimensions if d.is_range)
            raise SpaceError(f"a grid search needs lists of choices, but {ranged} is a range; "
                             "give choices or use --search random/optuna")
        return {d.key: d.to_tune(grid) for d in self.dimensions}

    def describe(self) -> str:
        return "\n".join(f"  {d.key}: {d.describe()}" for d in self.dimensions)

    def to_config(self) -> dict:
        """A JSON-friendly form, stored with the sweep."""
        return {d.key: (list(d.choices) if not d.is_range else
                        {"loguniform" if d.log else "uniform": [d.low, d.high]}) for d in self.dimensions}


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


def implicit_of(variant: Mapping, base: Mapping | None = None) -> dict:
    """``implicit=dict(...)`` for a sampled variant, over the config's own ``base``."""
    variant = effective(variant)
    implicit = {k: v for k, v in (base or {}).items()}
    placements = variant.get("placements")
    names = placements.split(JOIN) if placements is not None else None
    if names is None:
        names = [p if isinstance(p, str) else p.get("name") for p in implicit.get("placements", ["fpn", "pred"])]
        if None in names and any(k.startswith("operators.") for k in variant):
            raise SpaceError("operators are searched per placement name; the config's placements use module paths")
    if placements is not None or any(k.startswith("operators.") for k in variant):
        entries = []
        for name in names:
            ops = variant.get(f"operators.{name}")
            entries.append(dict(name=name, operators=ops.split(JOIN)) if ops else name)
        implicit["placements"] = entries
    for key in ("modeling", "atoms", "dim"):
        if key in variant:
            implicit[key] = variant[key]
    init = {op: dict(v) for op, v in (implicit.get("init") or {}).items()}
    for key, value in variant.items():
        if key.startswith("init."):
            op, stat = key[len("init."):].rsplit("_", 1)
            init.setdefault(op, {})[stat] = float(value)
    if init:
        implicit["init"] = init
    return implicit


def _decides(key: str) -> bool:
    """Whether a key's value decides which other keys act in a variant (:func:`_acting`)."""
    return key in ("placements", "modeling") or key.startswith("operators.")


def _acting(variant: Mapping) -> set[str]:
    """The keys of a variant that change the model it trains: those :func:`effective` keeps,
    less the init of an operator that none of its placements applies (known when the variant
    sets placements; else the config's placements decide, and every init key counts)."""
    keys = set(effective(variant))
    if "placements" not in variant:
        return keys
    used = set()
    for name in variant["placements"].split(JOIN):
        ops = variant.get(f"operators.{name}")
        if not ops and name not in PLACEMENTS:
            return keys
        used.update(ops.split(JOIN) if ops else PLACEMENTS[name])
    return {k for k in keys if not (k.startswith("init.") and k[len("init."):].rsplit("_", 1)[0] not in used)}


def effective(variant: Mapping) -> dict:
    """The variant without the searched keys that do not act in it: operators of a
    placement it leaves out, atoms without mf, dim without nn."""
    names = set(variant["placements"].split(JOIN)) if "placements" in variant else None
    out = {}
    for key, value in variant.items():
        if key.startswith("operators.") and names is not None and key.split(".", 1)[1] not in names:
            continue
        if key in MODELING_PARAMS and variant.get("modeling", MODELING_PARAMS[key]) != MODELING_PARAMS[key]:
            continue
        out[key] = value
    return out


def label_of(variant: Mapping) -> str:
    """A short human label: 'fpn+pred pred:multiply+add mf atoms=4 add_std=0.02'."""
    parts = []
    for key, value in sorted(effective(variant).items()):
        if key == "placements":
            parts.insert(0, value)
        elif key.startswith("operators."):
            parts.append(f"{key.split('.', 1)[1]}:{value}")
        elif isinstance(value, float):
            parts.append(f"{key.split('.')[-1]}={value:.3g}")
        else:
            parts.append(f"{key}={value}" if key in MODELING_PARAMS else str(value))
    return " ".join(parts)


__all__ = ["DEFAULT_SPACE", "Dimension", "SearchSpace", "SpaceError", "effective", "implicit_of", "label_of",
           "load_space_file", "parse_space"]
