"""Approval check: conditional columns a job may use under the officer's signed approvals.

A conditional column is usable only if some approval file in the node's approvals folder
verifies under the officer public key of the node config (ed25519), names this node's
department and dataset, names exactly this job and purpose, covers the column, allows the
job's epsilon, and is valid now (`issued_at <= now < expires_at`). Files are read for every
job, so an approval dropped into the folder counts from the next job on.
"""

from __future__ import annotations

import base64
import enum
import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clients.node_config import NodeConfig
from vocab.approval import JobClaims, SignedApproval, format_time, key_id_of, load_signed_approval
from vocab.errors import ConfigError, InternalError, PolicyRefusal

__all__ = [
    "ApprovalFault",
    "ApprovalFile",
    "ApprovalFolder",
    "OfficerKey",
    "UsedApproval",
    "approve_conditional_columns",
    "load_officer_key",
    "read_approvals",
    "signature_fault",
]

log = logging.getLogger(__name__)

_KEYGEN_HINT = "made by `silobridge officer keygen`"


class ApprovalFault(enum.Enum):
    """Why an approval file does not approve a column for a job."""

    FORGED = "forged"
    WRONG_DEPARTMENT = "wrong department"
    WRONG_DATASET = "wrong dataset"
    WRONG_JOB = "wrong job"
    WRONG_PURPOSE = "wrong purpose"
    COLUMN_NOT_COVERED = "column not covered"
    EPSILON_TOO_HIGH = "epsilon too high"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"


# Faults that mean an approval is about another node or job altogether: an approval free
# of them is "closer" than any approval that has one, whatever else is wrong with it.
_ELSEWHERE = frozenset(
    {ApprovalFault.WRONG_DEPARTMENT, ApprovalFault.WRONG_DATASET, ApprovalFault.WRONG_JOB}
)


@dataclass(frozen=True)
class OfficerKey:
    """The department officer's ed25519 public key and its key id."""

    public_key: Ed25519PublicKey
    key_id: str

    @classmethod
    def from_public_key(cls, public_key: Ed25519PublicKey) -> OfficerKey:
        """Wraps a key, computing its key id from its raw bytes."""
        return cls(public_key, key_id_of(public_key.public_bytes_raw()))

    @classmethod
    def from_pem(cls, data: bytes) -> OfficerKey:
        """Reads a PEM public key (SubjectPublicKeyInfo, as in `officer.pub`).

        Raises:
            ValueError: The data is not a PEM public key, or not an ed25519 one; the
                message says which.
        """
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError("is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"holds a {type(key).__name__}, not an ed25519 key")
        return cls.from_public_key(key)


@dataclass(frozen=True)
class ApprovalFile:
    """One parsed approval file (its signature not yet checked)."""

    path: Path
    signed: SignedApproval


@dataclass(frozen=True)
class ApprovalFolder:
    """The approvals folder as read for one job: parsed files and files that failed to parse."""

    folder: Path
    exists: bool
    files: tuple[ApprovalFile, ...]
    problems: tuple[ConfigError, ...]


@dataclass(frozen=True)
class UsedApproval:
    """An approval that unlocked conditional columns for a job: what the audit log records."""

    path: Path
    key_id: str
    digest: str
    job: str
    columns: tuple[str, ...]
    """The job's conditional columns this approval was used for."""
    expires_at: datetime

    def audit_record(self) -> dict[str, Any]:
        """JSON-ready fields for the audit log."""
        return {
            "file": self.path.name,
            "key_id": self.key_id,
            "digest": self.digest,
            "job": self.job,
            "columns": list(self.columns),
            "expires_at": format_time(self.expires_at),
        }


def _key_error(config: NodeConfig, path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{config.config_path}: [officer] `public_key` {path} {problem}",
        f"use the officer's officer.pub ({_KEYGEN_HINT}) or its raw key in base64",
    )


def load_officer_key(config: NodeConfig) -> OfficerKey | None:
    """The officer public key named by the node config's [officer] table, if any.

    Args:
        config: This node's config.

    Returns:
        The key, or None when the config names no key.

    Raises:
        ConfigError: The key file cannot be read or holds no ed25519 public key.
    """
    officer = config.officer
    if officer is None:
        return None
    if officer.public_key_base64 is not None:
        raw = base64.b64decode(officer.public_key_base64, validate=True)
        return OfficerKey.from_public_key(Ed25519PublicKey.from_public_bytes(raw))
    path = officer.public_key_path
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _key_error(config, path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        return OfficerKey.from_pem(data)
    except ValueError as exc:
        raise _key_error(config, path, str(exc)) from None


def read_approvals(folder: Path) -> ApprovalFolder:
    """Parses every `*.json` file of `folder`; a malformed file is kept as a problem.

    A missing folder holds no approvals. One bad file never hides the good ones:
    `load_signed_approval` turns a failure of any kind to read or parse a file (bad JSON,
    absurd numbers, text with no UTF-8 form) into a ConfigError naming that file.

    Raises:
        ConfigError: The folder exists but cannot be listed.
    """
    if not folder.is_dir():
        return ApprovalFolder(folder, False, (), ())
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError as exc:
        raise ConfigError(
            f"cannot list the approvals folder {folder}: {exc.strerror or exc}",
            "let the node's user read that folder",
        ) from None
    files, problems = [], []
    for path in paths:
        try:
            files.append(ApprovalFile(path, load_signed_approval(path)))
        except ConfigError as exc:
            problems.append(exc)
    return ApprovalFolder(folder, True, tuple(files), tuple(problems))


def signature_fault(signed: SignedApproval, key: OfficerKey) -> str | None:
    """None if the officer key signed exactly this approval, else why it is forged."""
    approval = signed.approval
    forged = f"forged/not signed by this department's officer key {key.key_id}"
    if approval.key_id != key.key_id:
        return f"{forged} (it names key {approval.key_id})"
    try:
        key.public_key.verify(signed.signature, approval.canonical_bytes())
    except InvalidSignature:
        return (
            f"{forged} (the signature does not match the content: altered after signing, "
            "or signed by another key)"
        )
    return None


def _listed(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


_Judged = tuple[ApprovalFile, dict[ApprovalFault, str]]


def _faults(
    signed: SignedApproval,
    forged: str | None,
    config: NodeConfig,
    claims: JobClaims,
    column: str,
    now: datetime,
) -> dict[ApprovalFault, str]:
    a = signed.approval
    checks = [
        (ApprovalFault.FORGED, forged is not None, forged or ""),
        (
            ApprovalFault.WRONG_DEPARTMENT,
            a.department != config.department,
            f"wrong department (it is for `{a.department}`, this node is `{config.department}`)",
        ),
        (
            ApprovalFault.WRONG_DATASET,
            a.dataset != config.dataset,
            f"wrong dataset (it is for `{a.dataset}`, this node holds `{config.dataset}`)",
        ),
        (ApprovalFault.WRONG_JOB, a.job != claims.name, f"wrong job (it approves `{a.job}`)"),
        (
            ApprovalFault.WRONG_PURPOSE,
            a.purpose != claims.purpose,
            f"wrong purpose (it approves {a.purpose!r}, the job states {claims.purpose!r})",
        ),
        (
            ApprovalFault.COLUMN_NOT_COVERED,
            column not in a.columns,
            f"column not covered (it approves only {_listed(sorted(a.columns))})",
        ),
        (
            ApprovalFault.EPSILON_TOO_HIGH,
            claims.epsilon > a.max_epsilon,
            f"epsilon too high (the job asks for {claims.epsilon!r}, it allows at most "
            f"{a.max_epsilon!r})",
        ),
        (
            ApprovalFault.NOT_YET_VALID,
            now < a.issued_at,
            f"not valid before {format_time(a.issued_at)} (node clock: {format_time(now)})",
        ),
        (ApprovalFault.EXPIRED, now >= a.expires_at, f"expired at {format_time(a.expires_at)}"),
    ]
    return {fault: detail for fault, failed, detail in checks if failed}


def _closest(judged: list[_Judged]) -> _Judged:
    """The approval most likely meant for this column of this job.

    Ranked by: about this node and job; covers the column; genuine; fewest faults.
    """

    def distance(item: _Judged) -> tuple[int, bool, bool, int]:
        faults = item[1]
        return (
            len(faults.keys() & _ELSEWHERE),
            ApprovalFault.COLUMN_NOT_COVERED in faults,
            ApprovalFault.FORGED in faults,
            len(faults),
        )

    return min(judged, key=distance)


def _approve_command(config: NodeConfig, claims: JobClaims, columns: Sequence[str]) -> str:
    out = config.approvals_dir / f"{claims.name}.json"
    return (
        f"silobridge officer approve --key officer.key --department {config.department} "
        f"--dataset {config.dataset} --job {shlex.quote(claims.name)} --purpose "
        f"{shlex.quote(claims.purpose)} --columns {shlex.quote(','.join(columns))} "
        f"--max-epsilon {claims.epsilon!r} --days 90 --out {shlex.quote(str(out))}"
    )


def _refusal(
    config: NodeConfig,
    claims: JobClaims,
    columns: Sequence[str],
    closest: dict[str, _Judged | None],
    folder: ApprovalFolder,
    key: OfficerKey,
) -> PolicyRefusal:
    unapproved = [name for name in columns if name in closest]
    reasons = {}
    for name, judged in closest.items():
        if judged is None:
            reasons[name] = "no approval file"
        else:
            file, faults = judged
            reasons[name] = f"closest approval {file.path.name}: {' and '.join(faults.values())}"
    where = f"approvals read from {folder.folder}"
    if not folder.exists:
        where = f"the approvals folder {folder.folder} does not exist"
    message = (
        f"job `{claims.name}` uses conditional column(s) {_listed(unapproved)} of department "
        f"`{config.department}` without a valid signed approval ({where}): "
        + "; ".join(f"`{name}`: {reasons[name]}" for name in unapproved)
    )
    if folder.problems:
        message += "; unreadable approval file(s): " + "; ".join(
            problem.message for problem in folder.problems
        )
    hint = (
        "ask the department's privacy officer to sign an approval for this job, purpose "
        f"and epsilon: `{_approve_command(config, claims, unapproved)}`"
    )
    if not claims.purpose:
        hint = "state the job's `purpose` in its spec (approvals name one), then " + hint
    if any(j is not None and ApprovalFault.FORGED in j[1] for j in closest.values()):
        hint += (
            f"; if the officer did sign it, check that [officer] `public_key` in "
            f"{config.config_path} is their key (key id {key.key_id})"
        )
    if folder.problems:
        hint += "; fix or remove the unreadable file(s)"
    return PolicyRefusal(message, hint)


def approve_conditional_columns(
    config: NodeConfig, claims: JobClaims, columns: Sequence[str], now: datetime
) -> tuple[UsedApproval, ...]:
    """Finds a valid signed approval for each conditional column, or refuses the job.

    Args:
        config: This node's config (department, dataset, officer key, approvals folder).
        claims: What the job asks for: name, purpose, epsilon.
        columns: The job's conditional columns (already known to be declared conditional).
        now: The time approvals must be valid at (timezone-aware).

    Returns:
        The approvals used, one per approval file, each with the columns it unlocked.

    Raises:
        PolicyRefusal: Some column has no valid approval. The message gives, per column,
            every reason the closest approval fails, and the hint the command that makes
            a valid one.
        ConfigError: The officer key named in the config cannot be read.
    """
    if now.utcoffset() is None:
        raise InternalError("approvals are checked against a timezone-aware time")
    wanted = list(dict.fromkeys(columns))
    if not wanted:
        return ()
    key = load_officer_key(config)
    if key is None:
        raise PolicyRefusal(
            f"job `{claims.name}` uses conditional column(s) {_listed(wanted)} of department "
            f"`{config.department}`, but no officer key is configured to verify approvals "
            f"(no [officer] `public_key` in {config.config_path})",
            'the node operator adds [officer] with public_key = "officer.pub" (the privacy '
            f"officer's public key, {_KEYGEN_HINT}) to the node config; then the officer "
            f"signs an approval: `{_approve_command(config, claims, wanted)}`",
        )
    folder = read_approvals(config.approvals_dir)
    for problem in folder.problems:
        log.warning("ignoring an approval file: %s", problem.message)
    forged = {file.path: signature_fault(file.signed, key) for file in folder.files}
    chosen: dict[ApprovalFile, list[str]] = {}
    closest: dict[str, _Judged | None] = {}
    for column in wanted:
        judged = [
            (file, _faults(file.signed, forged[file.path], config, claims, column, now))
            for file in folder.files
        ]
        valid = [file for file, faults in judged if not faults]
        if valid:
            # Prefer the approval that covers most of the job, then the one that lasts longest.
            best = min(
                valid,
                key=lambda f: (
                    -len(f.signed.approval.columns & set(wanted)),
                    -f.signed.approval.expires_at.timestamp(),
                    f.path,
                ),
            )
            chosen.setdefault(best, []).append(column)
        else:
            closest[column] = _closest(judged) if judged else None
    if closest:
        raise _refusal(config, claims, wanted, closest, folder, key)
    return tuple(
        UsedApproval(
            path=file.path,
            key_id=file.signed.approval.key_id,
            digest=file.signed.approval.digest(),
            job=file.signed.approval.job,
            columns=tuple(used),
            expires_at=file.signed.approval.expires_at,
        )
        for file, used in chosen.items()
    )
