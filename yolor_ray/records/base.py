"""What every record is: a :class:`Part` read from a JSON object, and a :class:`Record`, a
file's part, written with a ``schema`` number and read back through ``from_json``."""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")
P = TypeVar("P", bound="Part")


class RecordError(ValueError):
    """A record's text is not that record: not JSON, not an object, or without a required
    field. One type, so that readers catch this alone and say which file it was."""


class Part:
    """A dataclass read from a JSON object: its required fields present, unknown keys (of
    newer writers) ignored, nested parts (fields typed as a ``Part``, a list of them, or
    either or None) rebuilt from their dicts."""

    @classmethod
    def from_dict(cls: type[P], raw: dict[str, Any]) -> P:
        if not isinstance(raw, dict):
            raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in raw
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise RecordError(f"without {', '.join(missing)}")
        cls._check_schema(raw)
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _rebuilt(hints[f.name], raw[f.name]) for f in fields if f.name in raw})

    @classmethod
    def _check_schema(cls, raw: dict[str, Any]) -> None:
        """A record's own check of the schema it was written with (a part has none)."""


def _rebuilt(hint, value):
    """``value`` as a field typed ``hint`` holds it: a nested part (or a list of them) from its dict(s)."""
    part = _part_of(hint)
    if part is None or value is None:
        return value
    if typing.get_origin(hint) is list or any(typing.get_origin(arg) is list for arg in typing.get_args(hint)):
        if not isinstance(value, list):
            raise RecordError(f"expected a list of {part.__name__}, got {type(value).__name__}")
        return [v if isinstance(v, part) else part.from_dict(v) for v in value]
    return value if isinstance(value, part) else part.from_dict(value)


def _part_of(hint) -> type[Part] | None:
    """The Part a field typed ``hint`` holds (``X``, ``list[X]``, ``X | None``), else None."""
    if isinstance(hint, type) and issubclass(hint, Part):
        return hint
    return next((part for part in map(_part_of, typing.get_args(hint)) if part is not None), None)


class Record(Part):
    """A file's record: to_json / from_json for the dataclasses below. ``OLDEST_SCHEMA``: the
    oldest schema this version reads (an older file is a RecordError that says so)."""

    SCHEMA: ClassVar[int] = 1
    OLDEST_SCHEMA: ClassVar[int] = 0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def _check_schema(cls, raw: dict[str, Any]) -> None:
        schema = raw.get("schema", 0)
        if isinstance(schema, int) and schema < cls.OLDEST_SCHEMA:
            raise RecordError(f"written by an earlier yolor-ray (schema {schema}; this one reads schema "
                              f"{cls.OLDEST_SCHEMA} and later)")

    @classmethod
    def from_stored(cls: type[R], text: str | None, file_name: str) -> R:
        """``from_json`` of a file read from storage (``None``: it is not there)."""
        if text is None:
            raise RecordError(f"no {file_name}")
        return cls.from_json(text)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        try:
            raw = json.loads(text)
        except ValueError as err:  # cut short, or not ours
            raise RecordError(f"not JSON ({err})") from None
        return cls.from_dict(raw)
