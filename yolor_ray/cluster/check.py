"""``yolor-ray cluster check FILE``: a Ray autoscaler cluster file checked offline, by Ray's
own schema and then our rules (docs/cluster.md, "What `yolor-ray cluster check` enforces"),
so that a bad file fails on the laptop with every problem listed at once, before ``ray up``
spends anything. Nothing here contacts the cloud.
"""
from __future__ import annotations

import copy
import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from yolor_ray import paths
from yolor_ray.cluster.scorer import SPOT_SUFFIX, spot_fallback_scorer
from yolor_ray.errors import UserError
from yolor_ray.storage import StorageError, StorageSpec

STORAGE_VAR = "YOLOR_RAY_STORAGE"
SCORER = f"{spot_fallback_scorer.__module__}.{spot_fallback_scorer.__qualname__}"  # its dotted path
SCORER_ENV = re.compile(rf"\bRAY_AUTOSCALER_UTILIZATION_SCORER=[\"']?{re.escape(SCORER)}\b")
AUTOSCALER_V1 = re.compile(r"\bRAY_enable_autoscaler_v2=[\"']?0\b")
TOKEN_VAR = "RAY_AUTH_TOKEN"

# vCPUs and GPUs of the AWS instance types we size for (docs/cluster.md); others are not checked.
AWS_INSTANCES = {
    "m5.large": (2, 0), "m5.xlarge": (4, 0), "m5.2xlarge": (8, 0), "m5.4xlarge": (16, 0),
    "m6i.xlarge": (4, 0), "m6i.2xlarge": (8, 0), "m6i.4xlarge": (16, 0),
    "g4dn.xlarge": (4, 1), "g4dn.2xlarge": (8, 1), "g4dn.12xlarge": (48, 4), "g4dn.metal": (96, 8),
    "g5.xlarge": (4, 1), "g5.2xlarge": (8, 1), "g5.4xlarge": (16, 1), "g5.8xlarge": (32, 1),
    "g5.12xlarge": (48, 4), "g5.16xlarge": (64, 1), "g5.24xlarge": (96, 4), "g5.48xlarge": (192, 8),
    "g6.xlarge": (4, 1), "g6.12xlarge": (48, 4), "g6.48xlarge": (192, 8),
    "p3.2xlarge": (8, 1), "p3.8xlarge": (32, 4), "p3.16xlarge": (64, 8),
    "p4d.24xlarge": (96, 8), "p4de.24xlarge": (96, 8), "p5.48xlarge": (192, 8),
}
AWS_GPU_FAMILY = re.compile(r"^(p|g|gr)\d")  # every p*/g* instance family on AWS carries NVIDIA/AMD GPUs

SECRET_NAME = re.compile(r"secret|passw(or)?d|token|api[_-]?key|access[_-]?key", re.IGNORECASE)
# Names that point at a secret rather than hold one (a parameter name, a file, an id checked apart).
REFERENCE_SUFFIX = re.compile(r"(_path|_file|_parameter|_param|_arn|_name|_id)$", re.IGNORECASE)
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s;&|)]+)")
AWS_CONFIGURE = re.compile(r"aws\s+configure\s+set\s+(aws_secret_access_key|aws_session_token)\s+(\S+)")
RAY_START = re.compile(r"\bray\s+start\b")
AUTH_TOKEN_MODE = re.compile(r"\bRAY_AUTH_MODE=[\"']?token\b")
AUTH_OFF = re.compile(r"\bRAY_AUTH_MODE=[\"']?disabled\b")
DASHBOARD_HOST = re.compile(r"--dashboard-host[=\s]+[\"']?([^\s\"']+)")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
COMMAND_KEYS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands")


class ClusterFileError(UserError, ValueError):
    """A cluster file that cannot be read as one: missing, unreadable, not UTF-8, not a YAML mapping."""


class ClusterConfigError(UserError, ValueError):
    """A cluster file that Ray or our rules reject; ``problems`` holds one line per problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s):\n  - " + "\n  - ".join(self.problems))

    def __reduce__(self):  # picklable with its fields, like Ray's own errors
        return type(self), (self.path, self.problems)


@dataclass(frozen=True)
class NodeTypeReport:
    name: str
    instance_type: str | None
    market: str  # "spot" or "on-demand"
    cpus: int
    gpus: int
    min_workers: int
    max_workers: int
    is_head: bool


@dataclass(frozen=True)
class ClusterReport:
    path: str
    cluster_name: str
    provider: str
    region: str | None
    max_workers: int
    idle_timeout_minutes: float
    node_types: tuple[NodeTypeReport, ...]
    storage: str
    fallbacks: tuple[tuple[str, str], ...]  # (spot type, its on-demand twin)

    def summary(self) -> str:
        where = f"{self.provider} {self.region}" if self.region else self.provider
        lines = [f"{self.path}: valid (Ray's autoscaler schema and yolor-ray's rules)",
                 f"cluster {self.cluster_name!r} on {where}: up to {self.max_workers} workers, idle nodes removed "
                 f"after {self.idle_timeout_minutes:g} min",
                 f"{'node type':<18} {'instance':<14} {'market':<10} {'CPUs':>5} {'GPUs':>5}  workers"]
        for node in self.node_types:
            workers = "head" if node.is_head else f"{node.min_workers}..{node.max_workers}"
            lines.append(f"{node.name:<18} {node.instance_type or '-':<14} {node.market:<10} {node.cpus:>5} "
                         f"{node.gpus:>5}  {workers}")
        if self.fallbacks:
            lines.append("spot falls back to: " + ", ".join(f"{spot} -> {twin}" for spot, twin in self.fallbacks))
        lines.append(f"storage: {self.storage}")
        lines.append("token auth: on (RAY_AUTH_MODE=token on every ray start); dashboard: SSH port-forward only")
        return "\n".join(lines)


def check_cluster_config(path: str | Path) -> ClusterReport:
    """Validate a cluster file offline; raises ``ClusterConfigError`` listing every problem, or
    ``ClusterFileError`` (one line) for a file that cannot be read as YAML."""
    text = paths.read_text(path, "cluster file", ClusterFileError)
    path = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ClusterFileError(f"cluster file {path!r} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ClusterFileError(f"cluster file {path!r}: the top level must be a mapping of Ray cluster keys, got "
                               f"{type(raw).__name__}")

    problems, prepared = _ray_checks(raw)
    config = prepared if prepared is not None else raw
    problems += _resource_problems(config)
    problems += _secret_problems(raw)
    storage, storage_problems = _storage(raw, config)
    problems += storage_problems
    problems += _auth_problems(raw, config)
    problems += _exposure_problems(raw, config)
    problems += _spot_problems(config)
    if problems:
        raise ClusterConfigError(path, problems)
    return _report(path, config, storage)


# --- Ray's own checks ---------------------------------------------------------------

def _ray_checks(raw: dict) -> tuple[list[str], dict | None]:
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
        where = _key_path(list(error.absolute_path)) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        problems.append(f"{where}: {message} (Ray's autoscaler schema)")
    return problems


# --- node resources -------------------------------------------------------------------

def _node_types(config: dict) -> dict:
    types = config.get("available_node_types")
    return {name: spec for name, spec in types.items() if isinstance(spec, dict)} if isinstance(types, dict) else {}


def _is_aws(config: dict) -> bool:
    provider = config.get("provider")
    return isinstance(provider, dict) and provider.get("type") == "aws"


def _instance_type(spec: dict) -> str | None:
    node_config = spec.get("node_config")
    value = node_config.get("InstanceType") if isinstance(node_config, dict) else None
    return value if isinstance(value, str) else None


def _resource_problems(config: dict) -> list[str]:
    problems = []
    aws = _is_aws(config)
    for name, spec in _node_types(config).items():
        where = f"available_node_types.{name}.resources"
        resources = spec.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        instance = _instance_type(spec) if aws else None
        gpu_instance = bool(instance and AWS_GPU_FAMILY.match(instance))
        cpus, gpus = resources.get("CPU"), resources.get("GPU", 0)
        if not isinstance(cpus, int) or cpus < 0:
            problems.append(f"{where}.CPU: not declared; declare the node's CPUs, e.g. `resources: {{CPU: 8}}`, so "
                            "the autoscaler can plan without asking the cloud")
        if gpu_instance and (not isinstance(gpus, int) or gpus < 1):
            known = AWS_INSTANCES.get(instance, (None, None))[1]
            example = f"{{GPU: {known or 1}, CPU: {AWS_INSTANCES.get(instance, (4,))[0]}}}"
            problems.append(f"{where}.GPU: not declared for GPU instance type {instance}; declare it, e.g. "
                            f"`resources: {example}`, so the autoscaler can plan GPU runs offline")
        if instance in AWS_INSTANCES:
            known_cpus, known_gpus = AWS_INSTANCES[instance]
            if isinstance(gpus, int) and (gpus >= 1 or not gpu_instance) and gpus != known_gpus:
                problems.append(f"{where}.GPU: {gpus} declared, but {instance} has {known_gpus} GPU(s)")
            if isinstance(cpus, int) and cpus > known_cpus:
                problems.append(f"{where}.CPU: {cpus} declared, but {instance} has {known_cpus} vCPUs")
    return problems


# --- secrets --------------------------------------------------------------------------

def _walk(value, path: list):
    """(path, key, value) for every mapping entry and list item, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + [key], key, item
            yield from _walk(item, path + [key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield path + [index], None, item
            yield from _walk(item, path + [index])


def _is_literal(value: str) -> bool:
    value = value.strip().strip("\"'")
    return bool(value) and not value.startswith("$")


def _secret_problems(raw: dict) -> list[str]:
    problems = []
    for path, key, value in _walk(raw, []):
        where = _key_path(path)
        if isinstance(key, str) and SECRET_NAME.search(key) and not REFERENCE_SUFFIX.search(key) \
                and isinstance(value, (str, int, float)) and not isinstance(value, bool) and _is_literal(str(value)):
            problems.append(_secret_message(where, key))
        for text in ([key] if isinstance(key, str) else []) + ([value] if isinstance(value, str) else []):
            if AWS_KEY_ID.search(text):
                problems.append(f"{where}: holds an AWS access key id; give nodes an IAM instance profile "
                                "(node_config.IamInstanceProfile) instead of keys")
            if PRIVATE_KEY.search(text):
                problems.append(f"{where}: holds a private key; point auth.ssh_private_key at a key file instead")
        if isinstance(value, str):
            for name, assigned in ASSIGNMENT.findall(value):
                if SECRET_NAME.search(name) and not REFERENCE_SUFFIX.search(name) and _is_literal(assigned):
                    problems.append(_secret_message(where, name))
            for name, assigned in AWS_CONFIGURE.findall(value):
                if _is_literal(assigned):
                    problems.append(_secret_message(where, name))
    return list(dict.fromkeys(problems))


def _secret_message(where: str, name: str) -> str:
    if name == TOKEN_VAR:
        return (f"{where}: {TOKEN_VAR} is given a literal value; the token must come from a secret store at boot "
                "(e.g. `aws ssm get-parameter --with-decryption ... > ~/.ray/auth_token`) or from the environment "
                f"(${TOKEN_VAR}), never from the cluster file")
    return (f"{where}: {name} is given a literal value that looks like a secret; take it from the instance "
            "profile, a secret store or the environment ($VAR) instead")


# --- storage, token auth, exposure -------------------------------------------------------

def _commands(config: dict, name: str, spec: dict) -> list[tuple[str, str]]:
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


def _all_commands(config: dict) -> list[tuple[str, str]]:
    found = []
    for key in COMMAND_KEYS:
        commands = config.get(key)
        for index, command in enumerate(commands if isinstance(commands, list) else []):
            if isinstance(command, str):
                found.append((f"{key}[{index}]", command))
    for name, spec in _node_types(config).items():
        for key in ("initialization_commands", "worker_setup_commands"):
            for index, command in enumerate(spec.get(key) if isinstance(spec.get(key), list) else []):
                if isinstance(command, str):
                    found.append((f"available_node_types.{name}.{key}[{index}]", command))
    return found


def _storage(raw: dict, config: dict) -> tuple[str, list[str]]:
    problems, values = [], {}
    assignment = re.compile(rf"\b{STORAGE_VAR}=(\"[^\"]*\"|'[^']*'|[^\s;&|)'\"]*)")
    for where, command in _all_commands(raw):
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
    for name, spec in _node_types(config).items():
        if not any(assignment.search(command) for _, command in _commands(config, name, spec)):
            problems.append(f"available_node_types.{name}: its own command lists never set {STORAGE_VAR}; "
                            "set it in the lists that replace the global ones too")
    return next(iter(values)), problems


def _default_note(raw: dict, key: str) -> str:
    return "" if key in raw else f" ({key} is not in the file: Ray's default for the provider is used)"


def _auth_problems(raw: dict, config: dict) -> list[str]:
    problems = []
    for where, command in _all_commands(raw):
        if AUTH_OFF.search(command):
            problems.append(f"{where}: RAY_AUTH_MODE=disabled turns token auth off; valid is RAY_AUTH_MODE=token")
    head = config.get("head_node_type")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = [(f"{key}[{i}]", c) for i, c in enumerate(config.get(key) or []) if isinstance(c, str)] \
            if isinstance(config.get(key), list) else []
        starts = [(where, command) for where, command in commands if RAY_START.search(command)]
        workers_exist = any(name != head for name in _node_types(config))
        if not starts and (key.startswith("head") or workers_exist):
            problems.append(f"{key}: no `ray start` command; start Ray with `RAY_AUTH_MODE=token ray start ...`"
                            + _default_note(raw, key))
        for where, command in starts:
            mode = AUTH_TOKEN_MODE.search(command)
            if mode is None or mode.start() > RAY_START.search(command).start():
                problems.append(f"{where}: `ray start` runs without token auth; put RAY_AUTH_MODE=token before it "
                                "in the same command (the token itself comes from ~/.ray/auth_token)"
                                + _default_note(raw, key))
    return problems


def _exposure_problems(raw: dict, config: dict) -> list[str]:
    problems = []
    commands = config.get("head_start_ray_commands")
    for index, command in enumerate(commands if isinstance(commands, list) else []):
        if not isinstance(command, str):
            continue
        for host in DASHBOARD_HOST.findall(command):
            if host not in LOOPBACK:
                problems.append(f"head_start_ray_commands[{index}]: --dashboard-host={host} serves the dashboard "
                                "and job server beyond the head; use --dashboard-host=127.0.0.1 and reach them with "
                                "`ray dashboard cluster.yaml` (SSH port-forward)"
                                + _default_note(raw, "head_start_ray_commands"))
    provider = config.get("provider") if isinstance(config.get("provider"), dict) else {}
    group = provider.get("security_group") if isinstance(provider.get("security_group"), dict) else {}
    rules = group.get("IpPermissions") if isinstance(group.get("IpPermissions"), list) else []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        ranges = [r.get("CidrIp") for r in rule.get("IpRanges") or [] if isinstance(r, dict)] + \
                 [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges") or [] if isinstance(r, dict)]
        ssh_only = rule.get("IpProtocol") == "tcp" and rule.get("FromPort") == 22 and rule.get("ToPort") == 22
        if any(cidr in ("0.0.0.0/0", "::/0") for cidr in ranges) and not ssh_only:
            problems.append(f"provider.security_group.IpPermissions[{index}]: opens ports "
                            f"{rule.get('FromPort')}-{rule.get('ToPort')} to the whole internet; the dashboard, job "
                            "server and Ray ports must stay closed (reach them through SSH port-forwarding)")
    return problems


# --- spot and its on-demand fallback ------------------------------------------------------

def _is_spot(spec: dict) -> bool:
    node_config = spec.get("node_config")
    market = node_config.get("InstanceMarketOptions") if isinstance(node_config, dict) else None
    return isinstance(market, dict) and market.get("MarketType") == "spot"


def _spot_problems(config: dict) -> list[str]:
    problems = []
    types = _node_types(config)
    for name, spec in types.items():
        if _is_spot(spec) != name.endswith(SPOT_SUFFIX):
            problems.append(f"available_node_types.{name}: " + (
                f"a spot type must be named NAME{SPOT_SUFFIX} (the fallback scorer prefers those)" if _is_spot(spec)
                else f"named {SPOT_SUFFIX} but not spot; set node_config.InstanceMarketOptions.MarketType: spot"))
    on_demand = {_instance_type(spec) for spec in types.values() if not _is_spot(spec)}
    fallback = [name for name, spec in types.items() if _is_spot(spec) and _instance_type(spec) in on_demand]
    commands = config.get("head_start_ray_commands")
    starts = [c for c in (commands if isinstance(commands, list) else []) if isinstance(c, str) and RAY_START.search(c)]
    if fallback and not any(SCORER_ENV.search(c) and AUTOSCALER_V1.search(c) for c in starts):
        problems.append(f"head_start_ray_commands: {', '.join(fallback)} fall(s) back to on-demand only if the head's "
                        f"`ray start` has RAY_enable_autoscaler_v2=0 RAY_AUTOSCALER_UTILIZATION_SCORER={SCORER} "
                        "(Ray's own scorers retry a failing spot type)")
    return problems


# --- the report --------------------------------------------------------------------------

def _report(path: str, config: dict, storage: str) -> ClusterReport:
    head = config["head_node_type"]
    nodes = []
    for name, spec in _node_types(config).items():
        node_config = spec.get("node_config") or {}
        market = (node_config.get("InstanceMarketOptions") or {}).get("MarketType", "on-demand")
        resources = spec.get("resources") or {}
        nodes.append(NodeTypeReport(name, _instance_type(spec), "spot" if market == "spot" else "on-demand",
                                    resources.get("CPU", 0), resources.get("GPU", 0), spec.get("min_workers", 0),
                                    spec.get("max_workers", 0), name == head))
    nodes.sort(key=lambda node: (not node.is_head, node.gpus, node.name))
    fallbacks = tuple((spot.name, twin.name) for spot in nodes for twin in nodes
                      if spot.market == "spot" and twin.market == "on-demand" and not twin.is_head
                      and spot.instance_type == twin.instance_type)
    provider = config["provider"]
    return ClusterReport(path, config.get("cluster_name", ""), provider["type"], provider.get("region"),
                         config.get("max_workers", 0), config.get("idle_timeout_minutes", 0), tuple(nodes), storage,
                         fallbacks)


def _key_path(parts: list) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
