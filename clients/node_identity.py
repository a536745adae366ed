"""The node's identity key: signs its replies and its audit checkpoints.

It lives beside the ledger (`<ledger>.node-key`, mode 0600, made on first use) because it
belongs to the same state: the coordinator registers its public half for the department,
and the node's audit log is verified against it.
"""

from __future__ import annotations

from pathlib import Path

from vocab.identity_key import IdentityKey, load_or_create_identity

__all__ = ["node_identity", "node_key_path"]


def node_key_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".node-key")


def node_identity(ledger_path: Path) -> IdentityKey:
    """The node's key for the ledger at `ledger_path`, created on first use."""
    return load_or_create_identity(node_key_path(ledger_path))
