"""Who may call the coordinator's API: the roles and the name rule client certificates carry.

`silobridge certs issue` writes them into a certificate's subject (OU = role, CN = name);
the coordinator service reads them back from the certificate a caller presents. Both sides
take the rules from here so what one issues the other accepts.
"""

from __future__ import annotations

import re

from vocab.errors import ConfigError

__all__ = ["ROLES", "ROLE_NAME_RE", "check_caller_name", "check_role"]

ROLES = ("analyst", "officer", "operator")
"""Analysts submit jobs; officers govern budgets and approvals; operators run the service."""

ROLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A caller's name (the certificate's CN); use with `fullmatch`. No '/' and no leading '.',
so a name is also safe inside a file name."""


def check_caller_name(name: str) -> str:
    """`name` if it is a valid caller name.

    Raises:
        ConfigError: If it is not 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-',
            starting with a letter or digit.
    """
    if not ROLE_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid caller name",
            "use 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter "
            "or digit, e.g. r.ahmed",
        )
    return name


def check_role(role: str) -> str:
    """`role` if it is one of `ROLES`.

    Raises:
        ConfigError: If it is not, naming the roles there are.
    """
    if role not in ROLES:
        raise ConfigError(
            f"{role!r} is not a role",
            f"use one of {', '.join(ROLES)}",
        )
    return role
