"""Where runs and sweeps are stored: ``YOLOR_RAY_STORAGE`` set once, on every node type, to a
location every node shares (s3://bucket/prefix or an absolute path on a shared filesystem)."""
from __future__ import annotations

import re

from yolor_ray.cluster.fields import all_commands, commands_of, node_types
from yolor_ray.storage import StorageError, StorageSpec

STORAGE_VAR = "YOLOR_RAY_STORAGE"


def storage_and_problems(raw: dict, config: dict) -> tuple[str, list[str]]:
    """The location the file sets (empty when it sets none) and the problems of its setting."""
    problems, values = [], {}
    assignment = re.compile(rf"\b{STORAGE_VAR}=(\"[^\"]*\"|'[^']*'|[^\s;&|)'\"]*)")
    for where, command in all_commands(raw):
        for value in assignment.findall(command):
            values.setdefault(value.strip("\"'"), where)
    if not values:
        return "", [f"{STORAGE_VAR}: not set in any setup or start command; add `export {STORAGE_VAR}="
                    "s3://bucket/prefix` to setup_commands (where runs, sweeps and `yolor-ray table` read and write)"]
    for value, where in values.items():
        if value.startswith("$"):
            problems.append(f"{where}: {STORAGE_VAR}={value} is not a location; write the location itself, "
                            "s3://bucket/prefix or an absolute path on a filesystem every node mounts")
            continue
        try:
            spec = StorageSpec(value)
        except StorageError as err:
            problems.append(f"{where}: {STORAGE_VAR}: {err}")
            continue
        if not spec.is_s3 and not value.startswith("/"):
            problems.append(f"{where}: {STORAGE_VAR}={value!r} is not shared by the nodes; valid are "
                            "s3://bucket/prefix or an absolute path on a filesystem every node mounts")
    if len(values) > 1:
        problems.append(f"{STORAGE_VAR}: set to {len(values)} different locations ({', '.join(sorted(values))}); "
                        "set it once")
    for name, spec in node_types(config).items():
        if not any(assignment.search(command) for _, command in commands_of(config, name, spec)):
            problems.append(f"available_node_types.{name}: its own command lists never set {STORAGE_VAR}; "
                            "set it in the lists that replace the global ones too")
    return next(iter(values)), problems
