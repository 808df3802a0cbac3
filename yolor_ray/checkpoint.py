"""Load our MMEngine checkpoints under torch >= 2.6's ``weights_only=True`` default.

Rather than ``weights_only=False`` (which would unpickle anything), the few plain
types our checkpoints hold are allow-listed; anything else in a file still raises.
MMEngine's message-hub buffers, which pickle bound methods, are left out when we
save (``RayTrainReportHook.before_save_checkpoint``).
"""
from __future__ import annotations

import codecs
import collections
from pathlib import Path

import numpy as np
import torch

TRUSTED_PREFIX = "yolor-trusted://"


def _trusted_types() -> list:
    """What our checkpoints hold beside tensors: numpy arrays and scalars (metrics,
    RNG state), ``Counter`` (MultiStepLR milestones)."""
    from numpy._core.multiarray import _reconstruct, scalar

    return [collections.Counter, _reconstruct, scalar, np.ndarray, np.dtype, codecs.encode,
            *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "uint8", "bool"))]


def load_checkpoint_file(path: str | Path, map_location="cpu") -> dict:
    """``torch.load`` with weights_only=True and MMEngine's own types allowed."""
    with torch.serialization.safe_globals(_trusted_types()):
        return torch.load(str(path), map_location=map_location, weights_only=True)


def build_model_from_checkpoint(cfg, checkpoint_file: str | Path):
    """Build ``cfg.model`` on the CPU with the checkpoint's weights, in eval mode."""
    import yolor_ray  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get("default_scope", "mmdet"))
    model = MODELS.build(cfg.model)
    state = load_checkpoint_file(checkpoint_file)
    model.load_state_dict(state.get("state_dict", state))
    model.cfg = cfg
    if "meta" in state and "dataset_meta" in state["meta"]:
        model.dataset_meta = state["meta"]["dataset_meta"]
    return model.eval()
