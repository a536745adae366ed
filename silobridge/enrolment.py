"""Enrols a department's node with the coordinator: its SuperNode key with the SuperLink,
its identity key in the coordinator home."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from server.home.coordinator_home import CoordinatorHome
from silobridge.certs import read_node_public_key
from silobridge.flower_federation import Federation, register_supernode
from vocab.errors import ConfigError
from vocab.identity_key import PublicIdentity, public_identity_from_pem

__all__ = ["Enrolment", "enrol_node"]


@dataclass(frozen=True)
class Enrolment:
    """What `enrol_node` did: Flower's node id (None: the key was registered already) and
    the identity key now on record for the department."""

    node_id: str | None
    identity: PublicIdentity


def enrol_node(
    home: CoordinatorHome,
    federation: Federation,
    department: str,
    flower_key: Path,
    identity_pem: bytes,
    *,
    replace: bool = False,
) -> Enrolment:
    """Register a node's SuperNode key with the SuperLink and its identity key in `home`.

    Both keys are checked, and a clash with the department's registered identity key is
    refused, before anything is registered.

    Raises:
        ConfigError: A key is malformed, or the department has another identity key and
            `replace` is not set.
        SilobridgeError: The SuperLink did not register the SuperNode key.
    """
    read_node_public_key(flower_key)
    try:
        identity = public_identity_from_pem(identity_pem)
    except ValueError as err:
        raise ConfigError(
            f"the identity key given for {department} is not a PEM ed25519 public key ({err})",
            "pass the file `silobridge node key --config NODE.toml --out FILE` wrote",
        ) from None
    current = home.nodes.identity_of(department)
    if current is not None and current.raw != identity.raw and not replace:
        raise ConfigError(
            f"{department} already has node identity key {current.key_id} registered",
            "pass --replace to enrol a new key for it (the old key stops being believed)",
        )
    with tempfile.TemporaryDirectory(prefix="silobridge-register-") as flwr_home:
        node_id = register_supernode(federation, flower_key, Path(flwr_home))
    return Enrolment(node_id, home.nodes.register(department, identity_pem, replace=replace))
