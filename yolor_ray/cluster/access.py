"""Who can reach the cluster: every ``ray start`` with token auth, the dashboard and job server
on the head's loopback only (reached through an SSH port-forward), no port but SSH open to the
internet."""
from __future__ import annotations

import re

from yolor_ray.cluster.fields import RAY_START, all_commands, node_types

AUTH_TOKEN_MODE = re.compile(r"\bRAY_AUTH_MODE=[\"']?token\b")
AUTH_OFF = re.compile(r"\bRAY_AUTH_MODE=[\"']?disabled\b")
DASHBOARD_HOST = re.compile(r"--dashboard-host[=\s]+[\"']?([^\s\"']+)")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _default_note(raw: dict, key: str) -> str:
    return "" if key in raw else f" ({key} is not in the file: Ray's default for the provider is used)"


def auth_problems(raw: dict, config: dict) -> list[str]:
    problems = []
    for where, command in all_commands(raw):
        if AUTH_OFF.search(command):
            problems.append(f"{where}: RAY_AUTH_MODE=disabled turns token auth off; valid is RAY_AUTH_MODE=token")
    head = config.get("head_node_type")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = [(f"{key}[{i}]", c) for i, c in enumerate(config.get(key) or []) if isinstance(c, str)] \
            if isinstance(config.get(key), list) else []
        starts = [(where, command) for where, command in commands if RAY_START.search(command)]
        workers_exist = any(name != head for name in node_types(config))
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


def exposure_problems(raw: dict, config: dict) -> list[str]:
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
