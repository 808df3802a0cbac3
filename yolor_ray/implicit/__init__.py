"""YOLOR implicit knowledge on MMDetection detectors (docs/implicit.md).

Importing this package registers ``type='YOLOR'`` in mmdet's ``MODELS`` registry.

Public API:

* modules: :class:`ImplicitA`, :class:`ImplicitM`, :class:`ImplicitC`;
* settings: :class:`ImplicitSpec` (``ImplicitSpec.from_config(dict(...))``);
* placements: :func:`available_placements`, :func:`resolve_placement`;
* attaching: :func:`attach_implicit` (what ``type='YOLOR'`` does after building);
* checkpoints: :func:`load_weights` (baseline <-> YOLOR, with a report);
* deploy: :func:`fuse_implicit` (a model, in place), :func:`fuse_checkpoint` (files);
* cost: :func:`implicit_cost`, :func:`cost_table`.
"""
from yolor_ray.implicit.attach import (attach_implicit, count_implicit_params, implicit_modules,  # noqa: F401
                                       is_implicit_key)
from yolor_ray.implicit.build import YOLOR_TYPE, build_yolor, split_yolor_cfg  # noqa: F401  (registers YOLOR)
from yolor_ray.implicit.cost import ImplicitCost, cost_table, implicit_cost  # noqa: F401
from yolor_ray.implicit.fuse import FuseReport, FuseResult, fuse_checkpoint, fuse_implicit  # noqa: F401
from yolor_ray.implicit.modules import Implicit, ImplicitA, ImplicitC, ImplicitM, make_implicit  # noqa: F401
from yolor_ray.implicit.placements import (PlacementError, Site, available_placements,  # noqa: F401
                                           resolve_placement)
from yolor_ray.implicit.spec import ImplicitSpec, InitSpec, InitsSpec, PlacementSpec  # noqa: F401
from yolor_ray.implicit.weights import LoadReport, load_weights  # noqa: F401
