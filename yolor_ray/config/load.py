"""Load an MMDetection config file and merge the user's ``--cfg-options`` into it, rejecting
the typos MMEngine would ignore; :class:`ConfigError`, what every part of ``yolor_ray.config``
raises for a config that cannot be run."""
from __future__ import annotations

import ast
import difflib
import traceback
from pathlib import Path
from typing import Any, Iterable

from mmengine.config import Config

from yolor_ray import paths
from yolor_ray.errors import UserError

# Top-level keys that MMEngine's Runner.from_cfg reads. A top-level key that is close
# to one of these but not equal is almost surely a typo that MMEngine would ignore.
RUNNER_KEYS = (
    "model", "work_dir", "train_dataloader", "val_dataloader", "test_dataloader", "train_cfg", "val_cfg",
    "test_cfg", "auto_scale_lr", "optim_wrapper", "param_scheduler", "val_evaluator", "test_evaluator",
    "default_hooks", "custom_hooks", "data_preprocessor", "load_from", "resume", "launcher", "env_cfg",
    "log_processor", "log_level", "visualizer", "default_scope", "randomness", "experiment_name", "cfg",
    "custom_imports", "model_wrapper_cfg", "find_unused_parameters", "compile", "strategy",
)


class ConfigError(UserError, ValueError):
    """A config, or an override of it, that cannot be run."""


def load_config(path: str | Path, cfg_options: dict[str, Any] | None = None) -> Config:
    """Read a config file (and apply ``cfg_options``, see :func:`apply_cfg_options`);
    reject typos MMEngine would ignore."""
    path = paths.input_file(path, "config file", ConfigError)
    if path.suffix != ".py":
        raise ConfigError(f"config file {str(path)!r} must be an MMEngine Python config (.py)")
    paths.read_text(path, "config file", ConfigError)  # MMEngine reads it again: a one-line error first
    try:
        cfg = Config.fromfile(str(path.resolve()))
    except Exception as err:  # MMEngine raises many kinds for broken files
        raise ConfigError(f"config file {str(path)!r} could not be read: {_describe_load_error(err, path)}") from None
    for key in cfg.keys():
        if key in RUNNER_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.8)
        if close:
            raise ConfigError(f"unknown config key {key!r} in {str(path)!r}; did you mean {close[0]!r}? "
                              f"MMEngine would silently ignore it")
    if "model" not in cfg:
        raise ConfigError(f"config file {str(path)!r} defines no 'model'")
    apply_cfg_options(cfg, cfg_options)
    return cfg


def _describe_load_error(err: Exception, path: Path) -> str:
    """``Type: message``; for an empty message (``raise RuntimeError()`` in a config), where it was raised."""
    message = " ".join(str(err).split())
    if message:
        return f"{type(err).__name__}: {message}"
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).name == path.name]
    where = f" at line {frames[-1].lineno} ({frames[-1].line.strip()!r})" if frames and frames[-1].line else ""
    return f"{type(err).__name__} with no message{where}; run `python {path}` to see where it fails"


def apply_cfg_options(cfg: Config, cfg_options: dict[str, Any] | None) -> None:
    """Merge ``--cfg-options`` into ``cfg``, after every other change (the user's options win).

    A key must exist, or be new under an existing dict (``optim_wrapper.accumulative_counts``),
    unless it closely matches a key beside it (``num_clases`` next to ``num_classes``: a typo).
    """
    if not cfg_options:
        return
    for dotted in cfg_options:
        _check_key(cfg, dotted)
    cfg.merge_from_dict(cfg_options)


def parse_cfg_options(items: Iterable[str]) -> dict[str, Any]:
    """``key.sub=value`` strings (values as Python literals where they parse) to a dict."""
    options = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--cfg-options entries look like key.sub=value, got {item!r}")
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def _check_key(cfg: Config, dotted: str) -> None:
    node: Any = cfg.to_dict()  # plain dicts to walk (Config itself is not a dict)
    walked = []
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            where = ".".join(walked) or "the config"
            valid = sorted(map(str, node.keys())) if isinstance(node, dict) else []
            hint = difflib.get_close_matches(part, valid, n=1)
            # A new last key under a dict is an addition (MMEngine's tools allow it), unless it
            # reads like a typo of a key beside it. New top-level keys stay errors: MMEngine ignores them.
            if depth == len(parts) - 1 and depth > 0 and isinstance(node, dict):
                close = difflib.get_close_matches(part, valid, n=1, cutoff=0.8)
                if not close:
                    return
            raise ConfigError(
                f"unknown config key {dotted!r}: {where} has no {part!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + (f"; valid keys there: {', '.join(valid)}" if valid else ""))
        walked.append(part)
