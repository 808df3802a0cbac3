"""Ray's own checks of a cluster file (its autoscaler's prepare_config, validate_config and
JSON schema), every schema error listed, offline."""
from __future__ import annotations

import copy
import json
import logging
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import ray.autoscaler
from ray.autoscaler._private.util import prepare_config, validate_config

from yolor_ray.cluster.fields import key_path


def ray_problems(raw: dict) -> tuple[list[str], dict | None]:
    """Ray's prepare_config + validate_config; all schema errors, not just the first. Offline:
    Ray's bootstrap_config, which asks the cloud for subnets, roles and AMIs, is never called."""
    provider = raw.get("provider")
    if not isinstance(provider, dict) or not isinstance(provider.get("type"), str):
        return ["provider.type: missing; Ray needs the cloud's node provider, e.g. `provider: {type: aws, "
                "region: us-east-1}`"] + _schema_problems(raw), None
    try:
        with _quiet("ray.autoscaler._private.util"):  # its INFO lines ("setting max workers ...")
            prepared = prepare_config(copy.deepcopy(raw))
    except Exception as err:  # Ray's own errors are of every kind: KeyError, TypeError, NotImplementedError
        return [f"Ray's prepare_config cannot read it: {type(err).__name__}: {err}"] + _schema_problems(raw), None
    try:
        validate_config(prepared)
    except jsonschema.ValidationError:  # Ray stops at the first; list them all
        return _schema_problems(prepared), prepared
    except (ValueError, RuntimeError) as err:  # its cross-field rules
        return [f"Ray's validate_config: {err}"], prepared
    return [], prepared


@contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _schema_problems(config: dict) -> list[str]:
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = key_path(list(error.absolute_path)) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        problems.append(f"{where}: {message} (Ray's autoscaler schema)")
    return problems
