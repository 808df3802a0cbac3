"""YOLOR implicit knowledge on MMDetection models (docs/implicit.md): the model side only.

Importing this package registers nothing (``yolor_ray.registrations`` registers the
``type='YOLOR'`` builder in mmdet's ``MODELS``). Public API:

* modules: :class:`ImplicitA`, :class:`ImplicitM`, :class:`ImplicitC`;
* settings: :class:`ImplicitSpec` (``ImplicitSpec.from_config(dict(...))``);
* placements: :func:`available_placements`, :func:`resolve_placement`, :func:`resolution_of`
  (how a model's vocabulary was resolved: traced structure or names);
* attaching: :func:`attach_implicit` (what ``type='YOLOR'`` does after building);
* model configs: :func:`split_yolor_cfg`, :func:`yolor_model_cfg`;
* weights: :func:`load_weights` (baseline <-> YOLOR state dicts, with a report);
* deploy: :func:`fuse_implicit` (a model, in place; files: ``yolor_ray.deploy.fuse``).

The checks behind docs/implicit.md's coverage table (a detector built from a config file, one
train step, a fused copy compared) read config files: they are tests/support/implicit_checks.py.
"""
from yolor_ray.implicit.attach import attach_implicit, count_implicit_params, implicit_modules, is_implicit_key  # noqa: F401
from yolor_ray.implicit.build import YOLOR_TYPE, build_yolor, split_yolor_cfg, yolor_model_cfg  # noqa: F401
from yolor_ray.implicit.errors import ImplicitConfigError, PlacementError, WeightsMismatchError  # noqa: F401
from yolor_ray.implicit.fuse import FuseReport, fuse_implicit, remaining_placements  # noqa: F401
from yolor_ray.implicit.modules import Implicit, ImplicitA, ImplicitC, ImplicitM, make_implicit  # noqa: F401
from yolor_ray.implicit.placements import Resolution, available_placements, resolution_of, resolve_placement  # noqa: F401
from yolor_ray.implicit.sites import Site  # noqa: F401
from yolor_ray.implicit.spec import ImplicitSpec, InitSpec, InitsSpec, PlacementSpec  # noqa: F401
from yolor_ray.implicit.weights import LoadReport, load_weights, state_dict_of  # noqa: F401
