"""The coordinator's home folder: where its central caps and its audit log live.

The coordinator's own process uses it: the service (`silobridge coordinator start`), or
`silobridge job run` on the coordinator host, drives every job with it (`server.job_driver`).
The ServerApp launcher (`silobridge/serverapp_launcher.py`) gets its path as `HOME_ENV` to
read the app allowlist only; no ServerApp and not the SuperLink sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.central_budget.central_budget import CapChange, CapKind
from server.central_budget.sqlite_central_budget import SqliteCentralBudget
from server.home.coordinator_audit import CoordinatorAudit
from server.home.home_env import HOME_ENV
from server.home.node_registry import NODES_DIR, NodeRegistry
from vocab.errors import ConfigError
from vocab.identity_key import IdentityKey, load_or_create_identity

__all__ = [
    "AUDIT_FILE",
    "BUDGET_FILE",
    "HOME_ENV",
    "IDENTITY_FILE",
    "RESULTS_DIR",
    "CoordinatorHome",
]

AUDIT_FILE = "coordinator.audit.jsonl"
BUDGET_FILE = "central_budget.sqlite"
IDENTITY_FILE = "coordinator.key"
RESULTS_DIR = "results"  # the coordinator's copy of each job's bundle, one folder per job

_START_HINT = (
    "start the coordinator with `silobridge coordinator start`, or pass `--home DIR` (or set "
    f"{HOME_ENV}) to `silobridge job run|quote` on the coordinator host"
)


@dataclass(frozen=True)
class CoordinatorHome:
    """The folder; its files are created on first use."""

    root: Path

    @classmethod
    def from_setting(cls, value: str | None) -> CoordinatorHome:
        """The home a job is driven with (`--home`, `HOME_ENV`, the service's config).

        Raises:
            ConfigError: If there is none, or it is not an absolute path.
        """
        if not value:
            raise ConfigError(
                "the coordinator has no home folder, so there is nowhere to keep the central "
                "caps and the audit log",
                _START_HINT,
            )
        path = Path(value)
        if not path.is_absolute():
            raise ConfigError(f"{HOME_ENV} must be an absolute path, got {value!r}", _START_HINT)
        return cls(path)

    @classmethod
    def existing(cls, path: Path) -> CoordinatorHome:
        """A home an officer names on the command line; it must already exist.

        Raises:
            ConfigError: If the folder does not exist (a mistyped path would otherwise
                quietly start a second, empty set of caps).
        """
        if not path.is_dir():
            raise ConfigError(
                f"no coordinator home at {path}",
                "pass the folder the coordinator was started with (`--state-dir`)",
            )
        return cls(path.resolve())

    @property
    def audit_path(self) -> Path:
        return self.root / AUDIT_FILE

    @property
    def budget_path(self) -> Path:
        return self.root / BUDGET_FILE

    @property
    def nodes(self) -> NodeRegistry:
        """The registered node identity keys (`silobridge node register`)."""
        return NodeRegistry(self.root / NODES_DIR)

    @property
    def identity_path(self) -> Path:
        """The coordinator's ed25519 identity key, which signs its audit log."""
        return self.root / IDENTITY_FILE

    def identity(self) -> IdentityKey:
        """The coordinator's identity key, made on first use."""
        return load_or_create_identity(self.identity_path)

    def audit(self) -> CoordinatorAudit:
        return CoordinatorAudit(self.audit_path, self.identity())

    def budget(self) -> SqliteCentralBudget:
        return SqliteCentralBudget(self.budget_path)

    def set_cap(self, kind: CapKind, key: str, epsilon: float) -> CapChange:
        """Sets a central cap and appends the change to the audit log."""
        change = self.budget().set_cap(kind, key, epsilon)
        self.audit().cap_change(change)
        return change
