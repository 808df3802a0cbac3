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
mmdet's tools given ``custom_imports=dict(imports=['yolor_ray'])``.
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping

from torch import nn

from yolor_ray.implicit.attach import attach_implicit
from yolor_ray.implicit.spec import ImplicitSpec

YOLOR_TYPE = "YOLOR"


def _detector_registry():
    from mmdet.registry import MODELS

    return MODELS


def check_detector(detector: Any) -> str:
    registry = _detector_registry()
    if not isinstance(detector, str) or not detector:
        raise ValueError(f"YOLOR(detector) must be the registered type name of an mmdet detector, e.g. 'ATSS', "
                         f"got {detector!r}")
    if detector == YOLOR_TYPE:
        raise ValueError("YOLOR(detector) must name the base detector (e.g. 'FasterRCNN'), not 'YOLOR' itself")
    if registry.get(detector) is None:
        names = list(registry.module_dict)
        hint = difflib.get_close_matches(detector, names, n=3)
        raise ValueError(f"YOLOR(detector): {detector!r} is not a registered mmdet model"
                         + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
    return detector


def build_yolor(detector: str = None, implicit: Mapping | ImplicitSpec | None = None, **detector_cfg) -> nn.Module:
    """Build ``detector`` from the rest of the config and attach ``implicit``."""
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    spec = ImplicitSpec.from_config(implicit)  # validate before the (slow) build
    # ConfigDict: mmdet reads nested settings as attributes (train_cfg.rpn), as from a file.
    # Outside any scope (a bare MODELS.build), mmdet's parts need the 'mmdet' one.
    scope = None if DefaultScope.get_current_instance() is not None else "mmdet"
    with DefaultScope.overwrite_default_scope(scope):
        model = _detector_registry().build(ConfigDict(type=check_detector(detector), **detector_cfg))
    attach_implicit(model, spec)
    model.implicit_spec = spec  # read by YOLOROptimWrapperConstructor (weight decay)
    return model


def split_yolor_cfg(model_cfg: Mapping) -> tuple[dict, ImplicitSpec | None]:
    """(base detector config, implicit spec) of a model config; spec None for a plain one."""
    cfg = dict(model_cfg)
    if cfg.get("type") != YOLOR_TYPE:
        return cfg, None
    cfg.pop("type")
    detector = check_detector(cfg.pop("detector", None))
    spec = ImplicitSpec.from_config(cfg.pop("implicit", None))
    return dict(type=detector, **cfg), spec


def register() -> None:
    registry = _detector_registry()
    if registry.get(YOLOR_TYPE) is not build_yolor:
        registry.register_module(name=YOLOR_TYPE, module=build_yolor, force=True)


register()
