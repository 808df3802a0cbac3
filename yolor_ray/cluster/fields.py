"""The parts of a cluster file the rules read, tolerant of a malformed file (a missing or
mistyped part reads as empty): its node types, their instance type and market, the commands
that run on a node of each type, and a problem's key path."""
from __future__ import annotations

import re

RAY_START = re.compile(r"\bray\s+start\b")
COMMAND_KEYS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands")


def node_types(config: dict) -> dict:
    types = config.get("available_node_types")
    return {name: spec for name, spec in types.items() if isinstance(spec, dict)} if isinstance(types, dict) else {}


def is_aws(config: dict) -> bool:
    provider = config.get("provider")
    return isinstance(provider, dict) and provider.get("type") == "aws"


def instance_type(spec: dict) -> str | None:
    node_config = spec.get("node_config")
    value = node_config.get("InstanceType") if isinstance(node_config, dict) else None
    return value if isinstance(value, str) else None


def is_spot(spec: dict) -> bool:
    node_config = spec.get("node_config")
    market = node_config.get("InstanceMarketOptions") if isinstance(node_config, dict) else None
    return isinstance(market, dict) and market.get("MarketType") == "spot"


def commands_of(config: dict, name: str, spec: dict) -> list[tuple[str, str]]:
    """(key path, command) for what runs on a node of this type. Ray's rules: a worker type's
    own ``worker_setup_commands`` replace the global setup lists, its own
    ``initialization_commands`` the global ones. (In a prepared config the setup lists hold
    ``setup_commands`` already; listing them twice does not matter here.)"""
    head = name == config.get("head_node_type")
    own_setup = None if head else spec.get("worker_setup_commands")
    lists = [("initialization_commands", spec.get("initialization_commands"))]
    if isinstance(own_setup, list):
        lists.append(("worker_setup_commands", own_setup))
    else:
        lists += [("setup_commands", None), ("head_setup_commands" if head else "worker_setup_commands", None)]
    lists.append(("head_start_ray_commands" if head else "worker_start_ray_commands", None))
    found = []
    for key, own in lists:
        commands, where = (own, f"available_node_types.{name}.{key}") if isinstance(own, list) else \
            (config.get(key), key)
        for index, command in enumerate(commands if isinstance(commands, list) else []):
            if isinstance(command, str):
                found.append((f"{where}[{index}]", command))
    return found


def all_commands(config: dict) -> list[tuple[str, str]]:
    found = []
    for key in COMMAND_KEYS:
        commands = config.get(key)
        for index, command in enumerate(commands if isinstance(commands, list) else []):
            if isinstance(command, str):
                found.append((f"{key}[{index}]", command))
    for name, spec in node_types(config).items():
        for key in ("initialization_commands", "worker_setup_commands"):
            for index, command in enumerate(spec.get(key) if isinstance(spec.get(key), list) else []):
                if isinstance(command, str):
                    found.append((f"available_node_types.{name}.{key}[{index}]", command))
    return found


def key_path(parts: list) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
