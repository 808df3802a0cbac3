"""No secret in a cluster file: no literal value for a key or variable named like a secret, no
AWS access key id, no private key; secrets come from the instance profile, a secret store or
the environment."""
from __future__ import annotations

import re

from yolor_ray.cluster.fields import key_path

TOKEN_VAR = "RAY_AUTH_TOKEN"
SECRET_NAME = re.compile(r"secret|passw(or)?d|token|api[_-]?key|access[_-]?key", re.IGNORECASE)
# Names that point at a secret rather than hold one (a parameter name, a file, an id checked apart).
REFERENCE_SUFFIX = re.compile(r"(_path|_file|_parameter|_param|_arn|_name|_id)$", re.IGNORECASE)
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s;&|)]+)")
AWS_CONFIGURE = re.compile(r"aws\s+configure\s+set\s+(aws_secret_access_key|aws_session_token)\s+(\S+)")


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


def secret_problems(raw: dict) -> list[str]:
    problems = []
    for path, key, value in _walk(raw, []):
        where = key_path(path)
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
