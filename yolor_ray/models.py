"""Build mmdet models with yolor-ray's registrations: the one way this package builds one."""
from __future__ import annotations

from pathlib import Path

from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.registry import init_default_scope
from torch import nn

import yolor_ray.registrations  # noqa: F401  (type='YOLOR' and our parts must be known)
from yolor_ray.engine.checkpoint import load_checkpoint_file


def build_model(model_cfg, scope: str = "mmdet") -> nn.Module:
    """``MODELS.build`` with mmdet's modules registered and ``scope`` (a config's
    ``default_scope``) as the default scope, as mmdet's tools set it: evaluators and optim
    wrappers built after the model resolve their types in it too."""
    register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    return MODELS.build(model_cfg)


def build_model_from_checkpoint(cfg, checkpoint_file: str | Path) -> nn.Module:
    """Build ``cfg.model`` on the CPU with the checkpoint's weights, in eval mode."""
    model = build_model(cfg.model, cfg.get("default_scope", "mmdet"))
    state = load_checkpoint_file(checkpoint_file)
    model.load_state_dict(state.get("state_dict", state))
    model.cfg = cfg
    if "meta" in state and "dataset_meta" in state["meta"]:
        model.dataset_meta = state["meta"]["dataset_meta"]
    return model.eval()
