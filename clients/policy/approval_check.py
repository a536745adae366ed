"""Approval check: conditional columns a job may use under the officer's signed approvals.

A conditional column is usable only if some approval file in the node's approvals folder
verifies under the officer public key of the node config (ed25519), names this node's
department and dataset, names exactly this job spec (its fingerprint, name, purpose and
analyst) and the app bundle the node's gate verified for this run, covers the column, allows
the job's epsilon, and is valid now (`issued_at <= now < expires_at`). What the jobs using an
approval spend together is bounded by the ledger (`Ledger.reserve(approvals=...)`). Files
are read for every job, so an approval dropped into the folder counts from the next job on.

A refusal names only the job's own columns, fingerprint, app and analyst and how to ask for
an approval: never what an approval at the node approves, nor a node-local path. Why each
approval did not fit goes to the node's own log.
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
    WRONG_SPEC = "wrong spec"
    WRONG_JOB = "wrong job"
    WRONG_PURPOSE = "wrong purpose"
    WRONG_ANALYST = "wrong analyst"
    WRONG_APP = "wrong app"
    COLUMN_NOT_COVERED = "column not covered"
    EPSILON_TOO_HIGH = "epsilon too high"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"


# Faults that mean an approval is about another node or job altogether: an approval free
# of them is "closer" than any approval that has one, whatever else is wrong with it.
_ELSEWHERE = frozenset(
    {
        ApprovalFault.WRONG_DEPARTMENT,
        ApprovalFault.WRONG_DATASET,
        ApprovalFault.WRONG_JOB,
        ApprovalFault.WRONG_SPEC,
    }
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
    max_epsilon: float
    """The total epsilon of every job that uses this approval (the ledger enforces it)."""
    spec_fingerprint: str
    app_hash: str

    def audit_record(self) -> dict[str, Any]:
        """JSON-ready fields for the audit log."""
        return {
            "file": self.path.name,
            "key_id": self.key_id,
            "digest": self.digest,
            "job": self.job,
            "columns": list(self.columns),
            "expires_at": format_time(self.expires_at),
            "max_epsilon": self.max_epsilon,
            "spec_fingerprint": self.spec_fingerprint,
            "app_hash": self.app_hash,
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
        (
            ApprovalFault.WRONG_SPEC,
            a.spec_fingerprint != claims.fingerprint,
            f"wrong spec (it approves spec {a.spec_fingerprint}, the job's is "
            f"{claims.fingerprint or 'unknown'})",
        ),
        (ApprovalFault.WRONG_JOB, a.job != claims.name, f"wrong job (it approves `{a.job}`)"),
        (
            ApprovalFault.WRONG_PURPOSE,
            a.purpose != claims.purpose,
            f"wrong purpose (it approves {a.purpose!r}, the job states {claims.purpose!r})",
        ),
        (
            ApprovalFault.WRONG_ANALYST,
            a.analyst != claims.analyst,
            f"wrong analyst (it approves `{a.analyst}`, the job names `{claims.analyst}`)",
        ),
        (
            ApprovalFault.WRONG_APP,
            a.app_hash != claims.app_hash,
            f"wrong app (it approves app {a.app_hash}, this run's is {claims.app_hash})",
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


def _ask(config: NodeConfig, claims: JobClaims) -> str:
    """How to get an approval: only the job's own figures, never the node's files."""
    app = claims.app_hash or "HEX"
    ask = (
        f"ask the privacy officer of department `{config.department}` to approve this exact "
        f"spec (fingerprint {claims.fingerprint}, app {app}, analyst `{claims.analyst}`): "
        f"`silobridge officer approve --key officer.key --spec JOB.toml --app-hash {app} "
        f"--department {config.department} --dataset {config.dataset} --days 90 --out "
        f"{shlex.quote(claims.name + '.json')}` into the node's approvals folder"
    )
    if not claims.analyst:
        ask = "name the `analyst` in the job spec's [job] table (approvals name one), then " + ask
    if not claims.purpose:
        ask = "state the job's `purpose` in its spec (approvals name one), then " + ask
    return ask


def _log_details(
    config: NodeConfig,
    claims: JobClaims,
    closest: dict[str, _Judged | None],
    folder: ApprovalFolder,
    key: OfficerKey,
) -> None:
    """Why each approval did not fit, for the node's operator and officer only."""
    if not folder.exists:
        log.warning("job %s: the approvals folder %s does not exist", claims.name, folder.folder)
    for name, judged in closest.items():
        if judged is None:
            log.warning("job %s column %s: no approval file in %s", claims.name, name,
                        folder.folder)  # fmt: skip
            continue
        file, faults = judged
        log.warning(
            "job %s column %s: closest approval %s: %s", claims.name, name, file.path,
            " and ".join(faults.values()),
        )  # fmt: skip
        if ApprovalFault.FORGED in faults:
            log.warning(
                "if the officer did sign %s, check that [officer] public_key in %s is their "
                "key (key id %s)", file.path, config.config_path, key.key_id,
            )  # fmt: skip


def _refusal(config: NodeConfig, claims: JobClaims, columns: Sequence[str]) -> PolicyRefusal:
    return PolicyRefusal(
        f"job `{claims.name}` uses conditional column(s) {_listed(columns)} of department "
        f"`{config.department}`, and no valid signed approval at this node covers this exact "
        "job spec, app and analyst",
        _ask(config, claims),
    )


def approve_conditional_columns(
    config: NodeConfig, claims: JobClaims, columns: Sequence[str], now: datetime
) -> tuple[UsedApproval, ...]:
    """Finds a valid signed approval for each conditional column, or refuses the job.

    Args:
        config: This node's config (department, dataset, officer key, approvals folder).
        claims: What the job asks for: spec fingerprint, name, purpose, analyst, app,
            epsilon.
        columns: The job's conditional columns (already known to be declared conditional).
        now: The time approvals must be valid at (timezone-aware).

    Returns:
        The approvals used, one per approval file, each with the columns it unlocked.

    Raises:
        PolicyRefusal: Some column has no valid approval, or no gate verified the app
            (`claims.app_hash` is None). The message names the job's unapproved columns
            and the hint how to ask for an approval of this spec; why the closest approval
            fails goes to the node's log only.
        ConfigError: The officer key named in the config cannot be read.
    """
    if now.utcoffset() is None:
        raise InternalError("approvals are checked against a timezone-aware time")
    wanted = list(dict.fromkeys(columns))
    if not wanted:
        return ()
    if claims.app_hash is None:
        # Outside the node's app gate nothing says which code would read the columns.
        raise PolicyRefusal(
            f"job `{claims.name}` uses conditional column(s) {_listed(wanted)} of department "
            f"`{config.department}`, and this node process was not started through the "
            "node's app gate, so no approval can apply to it",
            "the node operator runs the node with `silobridge node start` (which verifies "
            "each run's app bundle); approvals name the app they allow",
        )
    key = load_officer_key(config)
    if key is None:
        log.warning("no [officer] public_key in %s: no approval can verify", config.config_path)
        raise PolicyRefusal(
            f"job `{claims.name}` uses conditional column(s) {_listed(wanted)} of department "
            f"`{config.department}`, which has no officer key configured to verify approvals",
            'the node operator adds [officer] public_key = "officer.pub" (the privacy '
            f"officer's public key, {_KEYGEN_HINT}) to the node config; then "
            + _ask(config, claims),
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
        _log_details(config, claims, closest, folder, key)
        raise _refusal(config, claims, [name for name in wanted if name in closest])
    return tuple(
        UsedApproval(
            path=file.path,
            key_id=file.signed.approval.key_id,
            digest=file.signed.approval.digest(),
            job=file.signed.approval.job,
            columns=tuple(used),
            expires_at=file.signed.approval.expires_at,
            max_epsilon=file.signed.approval.max_epsilon,
            spec_fingerprint=file.signed.approval.spec_fingerprint,
            app_hash=file.signed.approval.app_hash,
        )
        for file, used in chosen.items()
    )
