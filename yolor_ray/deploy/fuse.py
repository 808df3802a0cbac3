"""``yolor-ray fuse``: a YOLOR checkpoint file in, a deploy checkpoint and config out.

The folding itself is :func:`yolor_ray.implicit.fuse_implicit` (on a model); this module
reads the checkpoint (allow-listed) and its config, and writes the deploy files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from torch import nn

from yolor_ray import paths
from yolor_ray.config.edits import IMPLICIT_CONSTRUCTOR
from yolor_ray.config.load import load_config
from yolor_ray.engine.checkpoint import CheckpointError, CheckpointNotFoundError, load_checkpoint_file
from yolor_ray.implicit import (
    FuseReport,
    ImplicitConfigError,
    fuse_implicit,
    implicit_modules,
    load_weights,
    remaining_placements,
    split_yolor_cfg,
    yolor_model_cfg,
)
from yolor_ray.layout import CHECKPOINT_FILE, DEPLOY_CHECKPOINT, DEPLOY_CONFIG, FUSE_REPORT
from yolor_ray.models import build_model


@dataclass(frozen=True)
class FuseResult:
    """What :func:`fuse_checkpoint` wrote."""

    checkpoint: Path
    config: Path
    report_file: Path
    report: FuseReport = field(default_factory=FuseReport)


def deploy_model_cfg(model_cfg: dict, model: nn.Module) -> dict:
    """The model config of a fused model: kept implicits as explicit paths, or none."""
    detector_cfg, implicit = split_yolor_cfg(model_cfg)
    placements = remaining_placements(model)
    if implicit is None or not placements:
        return detector_cfg
    return yolor_model_cfg(detector_cfg, {**implicit, "placements": placements})


def _resolve_checkpoint(path: str | Path) -> Path:
    path = paths.input_file_or_folder(path, "checkpoint", CheckpointNotFoundError)
    if path.is_dir():
        candidates = [path / CHECKPOINT_FILE] + sorted(path.glob("*.pth"))
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise CheckpointNotFoundError(f"no checkpoint ({CHECKPOINT_FILE} or *.pth) in folder {str(path)!r}")
        return found
    return path


def _load_cfg(config_or_cfg: Any, checkpoint: dict, checkpoint_path: Path) -> Config:
    if isinstance(config_or_cfg, Config):
        return config_or_cfg
    if config_or_cfg is not None:
        return load_config(config_or_cfg)
    text = (checkpoint.get("meta") or {}).get("cfg")
    if not isinstance(text, str):
        raise CheckpointError(f"checkpoint {str(checkpoint_path)!r} holds no config (meta.cfg); pass the config file")
    return Config.fromstring(text, ".py")


def fuse_checkpoint(config_or_cfg: Any, checkpoint_in: str | Path, out: str | Path) -> FuseResult:
    """Load a YOLOR checkpoint, fuse it and write a deploy checkpoint and config to ``out``.

    ``config_or_cfg``: a config file, an MMEngine ``Config``, or None to use the config
    MMEngine stored in the checkpoint (``meta.cfg``). ``checkpoint_in``: a ``.pth`` file
    or a folder holding one (a Ray Train checkpoint folder). ``out``: a folder, created;
    it receives ``deploy.pth`` (state dict + meta), ``deploy.py`` (the config with the
    folded implicit placements removed and the kept ones as explicit paths) and
    ``fuse_report.json``.
    """
    checkpoint_path = _resolve_checkpoint(checkpoint_in)
    out = paths.output_folder(out, "output folder")  # before anything is loaded
    checkpoint = load_checkpoint_file(checkpoint_path)
    cfg = _load_cfg(config_or_cfg, checkpoint, checkpoint_path)
    model = build_model(cfg.model, cfg.get("default_scope", "mmdet"))
    if not any(True for _ in implicit_modules(model)):
        raise ImplicitConfigError(f"the model of this config ({cfg.model.get('type')}) has no implicit modules: "
                                  "nothing to fuse; pass the YOLOR config the checkpoint was trained with")
    report = load_weights(model, checkpoint)
    if report.missing_implicit:
        raise CheckpointError(f"checkpoint {str(checkpoint_path)!r} lacks the implicit parameters of this config "
                              f"({report.summary()}); is it a baseline checkpoint?")
    model.eval()
    fuse = fuse_implicit(model)

    cfg.model = deploy_model_cfg(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model), model)
    fully_folded = split_yolor_cfg(cfg.model)[1] is None
    if fully_folded and (cfg.get("optim_wrapper") or {}).get("constructor") == IMPLICIT_CONSTRUCTOR:
        cfg.optim_wrapper.pop("constructor")  # the plain baseline's config
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(checkpoint.get("meta") or {})
    deploy_meta = {k: meta[k] for k in ("dataset_meta", "epoch", "iter") if k in meta}
    deploy_meta.update(cfg=cfg.pretty_text, fused_from=str(checkpoint_path))
    result = FuseResult(out / DEPLOY_CHECKPOINT, out / DEPLOY_CONFIG, out / FUSE_REPORT, fuse)
    torch.save(dict(state_dict=model.state_dict(), meta=deploy_meta), result.checkpoint)
    cfg.dump(str(result.config))
    result.report_file.write_text(json.dumps(fuse.to_dict(), indent=1))
    return result
