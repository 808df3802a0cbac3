"""Load weights across variants: a baseline checkpoint into its YOLOR variant, and back.

Implicit parameters live under their own keys (``...implicit_<side>_<op>.*``) and
the detector's keys are the baseline's, so a baseline state dict loads into a YOLOR
model with only the implicit keys missing (they keep their init), and a YOLOR state
dict loads into the baseline with only those keys unexpected. Anything else that
does not match is an error, named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from torch import nn

from yolor_ray.implicit.attach import is_implicit_key
from yolor_ray.implicit.errors import WeightsMismatchError


@dataclass(frozen=True)
class LoadReport:
    """What a state dict did not cover, split into implicit and other keys."""

    missing_implicit: tuple[str, ...]
    unexpected_implicit: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not (self.missing_implicit or self.unexpected_implicit or self.missing or self.unexpected)

    def summary(self) -> str:
        if self.exact:
            return "all keys matched"
        parts = []
        for label, keys in (("implicit keys missing (left at their init)", self.missing_implicit),
                            ("implicit keys ignored", self.unexpected_implicit),
                            ("keys missing", self.missing), ("unexpected keys", self.unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
        return "; ".join(parts)


def state_dict_of(checkpoint: Mapping) -> dict:
    """The state dict of an MMEngine checkpoint dict or of a state dict (a file is loaded
    first, with the allow-list: ``yolor_ray.engine.checkpoint.load_checkpoint_file``)."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise WeightsMismatchError(f"a checkpoint must hold a state dict, got {type(checkpoint).__name__}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_weights(model: nn.Module, checkpoint: Mapping) -> LoadReport:
    """Load a baseline or YOLOR checkpoint into a baseline or YOLOR model.

    Raises WeightsMismatchError when keys other than implicit ones are missing or unexpected, or
    when a shape differs.
    """
    state = state_dict_of(checkpoint)
    own = model.state_dict()
    shapes = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if shapes:
        raise WeightsMismatchError(
            f"checkpoint does not fit {type(model).__name__}: shapes differ for {'; '.join(shapes[:5])}")
    result = model.load_state_dict(state, strict=False)
    report = LoadReport(
        missing_implicit=tuple(k for k in result.missing_keys if is_implicit_key(k)),
        unexpected_implicit=tuple(k for k in result.unexpected_keys if is_implicit_key(k)),
        missing=tuple(k for k in result.missing_keys if not is_implicit_key(k)),
        unexpected=tuple(k for k in result.unexpected_keys if not is_implicit_key(k)))
    if report.missing or report.unexpected:
        raise WeightsMismatchError(f"checkpoint does not fit {type(model).__name__}: {report.summary()}")
    return report
