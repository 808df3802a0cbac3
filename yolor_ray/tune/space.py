"""A sweep's search space as Tune sees it: a flat space of plain values (``placements='fpn+pred'``,
``operators.pred='multiply+add'``), which every searcher handles; which keys of a variant act in
it; and the distinct variants a space holds, counted and picked. A space given by a user
becomes one here through :mod:`yolor_ray.tune.space_parse`; a sampled variant becomes a run's
implicit settings through :mod:`yolor_ray.tune.variant`.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Mapping

from ray import tune

from yolor_ray.errors import UserError
from yolor_ray.implicit.spec import PLACEMENTS

MODELING_PARAMS = {"atoms": "mf", "dim": "nn"}  # searched only where that modeling is
JOIN = "+"  # joins names in one categorical value: 'fpn+pred'


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


__all__ = ["Dimension", "SearchSpace", "SpaceError", "effective"]
