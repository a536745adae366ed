"""Where a node keeps its audit log: beside its ledger, so one backup holds both."""

from __future__ import annotations

from pathlib import Path

__all__ = ["audit_path_for"]


def audit_path_for(ledger_path: Path) -> Path:
    """The audit log of the node whose ledger is `ledger_path`."""
    return ledger_path.with_name(ledger_path.stem + ".audit.jsonl")
