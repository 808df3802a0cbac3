"""``type='YOLOR'``: any registered mmdet detector plus implicit knowledge, by config.

A YOLOR config inherits its baseline and changes three keys of ``model``::

    _base_ = '../baseline/atss_r50_fpn_1x_coco.py'
    model = dict(type='YOLOR', detector='ATSS', implicit=dict(placements=['fpn', 'pred']))

``YOLOR`` is a builder function registered in mmdet's ``MODELS``: it builds
``dict(type=detector, **every other key)`` with mmdet's registry -- the very detector
class of the baseline, not a subclass or a wrapper -- then attaches the implicit
modules (:func:`attach_implicit`). Every other key (``backbone``, ``neck``, heads,
``train_cfg``...) stays where the baseline has it, so config tools that edit them
(``num_classes``, the small scale) work unchanged, and so do MMEngine's Runner and
mmdet's tools given ``custom_imports=dict(imports=['yolor_ray.registrations'])``, the
module that registers the builder (this one registers nothing).

:func:`split_yolor_cfg` and :func:`yolor_model_cfg` are the one place a model config is
taken apart into (detector config, implicit settings) and put back together.
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping

from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from torch import nn

from yolor_ray.implicit.attach import attach_implicit
from yolor_ray.implicit.errors import ImplicitConfigError
from yolor_ray.implicit.spec import ImplicitSpec

YOLOR_TYPE = "YOLOR"


def check_detector(detector: Any) -> str:
    if not isinstance(detector, str) or not detector:
        raise ImplicitConfigError(
            f"YOLOR(detector) must be the registered type name of an mmdet detector, e.g. 'ATSS', "
            f"got {detector!r}")
    if detector == YOLOR_TYPE:
        raise ImplicitConfigError("YOLOR(detector) must name the base detector (e.g. 'FasterRCNN'), not 'YOLOR' itself")
    if MODELS.get(detector) is None:
        names = list(MODELS.module_dict)
        hint = difflib.get_close_matches(detector, names, n=3)
        raise ImplicitConfigError(
            f"YOLOR(detector): {detector!r} is not a registered mmdet model"
            + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
    return detector


def build_yolor(detector: str = None, implicit: Mapping | ImplicitSpec | None = None, **detector_cfg) -> nn.Module:
    """Build ``detector`` from the rest of the config and attach ``implicit``."""
    spec = ImplicitSpec.from_config(implicit)  # validate before the (slow) build
    # ConfigDict: mmdet reads nested settings as attributes (train_cfg.rpn), as from a file.
    # Outside any scope (a bare MODELS.build), mmdet's parts need the 'mmdet' one.
    scope = None if DefaultScope.get_current_instance() is not None else "mmdet"
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(ConfigDict(type=check_detector(detector), **detector_cfg))
    attach_implicit(model, spec)
    model.implicit_spec = spec  # read by YOLOROptimWrapperConstructor (weight decay)
    return model


def split_yolor_cfg(model_cfg: Mapping) -> tuple[dict, dict | None]:
    """(detector config, implicit settings) of a model config; settings None for a plain
    detector. The detector config is the baseline's: ``type`` is the base detector."""
    cfg = dict(model_cfg)
    if cfg.get("type") != YOLOR_TYPE:
        return cfg, None
    cfg.pop("type")
    detector = cfg.pop("detector", None)
    implicit = cfg.pop("implicit", None)
    implicit = implicit.to_dict() if hasattr(implicit, "to_dict") else dict(implicit or {})
    return dict(type=detector, **cfg), implicit


def yolor_model_cfg(detector_cfg: Mapping, implicit: Mapping) -> dict:
    """The YOLOR model config of a detector config and implicit settings (the inverse of
    :func:`split_yolor_cfg`); the settings are checked here."""
    rest = dict(detector_cfg)
    detector = rest.pop("type")
    ImplicitSpec.from_config(implicit)
    return dict(type=YOLOR_TYPE, detector=detector, **rest, implicit=dict(implicit))
