"""Signed column approvals: what a privacy officer signs, its canonical bytes and file format.

An approval is bound to what it approves: one job spec (its `spec_fingerprint`, which
covers features, bounds, model, rounds, epsilon, delta, name, purpose and analyst), one app
bundle (`app_hash`, the hash `silobridge app hash` prints for a released version) and one
analyst; and `max_epsilon` bounds the total epsilon of every job that uses it, which the
node's ledger enforces. Anything else - another spec, another app, another analyst, more
epsilon - needs a new approval.

Pure: no cryptography here. The officer's tool signs `Approval.canonical_bytes()` with
ed25519 (`silobridge/officer_keys.py`); the node verifies it (`clients/policy/approval_check.py`).

File format (one approval per `*.json` file, written by `silobridge officer approve`)::

    {
      "format": "silobridge.column-approval/v2",
      "approval": {
        "analyst": "demo.analyst",
        "app_hash": "<64 hex: sha256 of the app bundle>",
        "columns": ["annual_inc"],
        "dataset": "lending",
        "department": "northeast",
        "expires_at": "2027-01-01T00:00:00Z",
        "issued_at": "2026-01-01T09:30:00Z",
        "job": "lending-risk",
        "key_id": "3f2a9c0d5e6b7a81",
        "max_epsilon": 1.0,
        "purpose": "joint credit-default risk model",
        "spec_fingerprint": "<64 hex: vocab.serde.spec_fingerprint of the job spec>"
      },
      "signature": "<base64 of the 64-byte ed25519 signature>"
    }

The signed bytes are the `approval` object plus `"format"`, as compact JSON with sorted keys
in UTF-8 (`Approval.canonical_bytes`), so a change to any field, or re-labelling the bytes
as another kind of document, breaks the signature. Files of format v1 (which bound no
spec, app or analyst) are refused with a message that says how to re-issue them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vocab.errors import ConfigError
from vocab.spec import JobEnvelope

__all__ = [
    "APPROVAL_FORMAT",
    "Approval",
    "JobClaims",
    "SignedApproval",
    "format_time",
    "key_id_of",
    "load_signed_approval",
    "parse_signed_approval",
    "serialize_signed_approval",
]

APPROVAL_FORMAT = "silobridge.column-approval/v2"
_OLD_FORMATS = ("silobridge.column-approval/v1",)
SIGNATURE_BYTES = 64  # ed25519
PUBLIC_KEY_BYTES = 32  # ed25519
_KEY_ID_HEX = 16

# The same rules as node names in the node config and job names in the job spec: an
# approval that could never match a node or a job is refused when it is made.
_NODE_NAME_RE = re.compile(r"[a-z0-9_-]{1,40}")
_JOB_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY_ID_RE = re.compile(rf"[0-9a-f]{{{_KEY_ID_HEX}}}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MAX_PURPOSE = 200
_FIELDS = (
    "analyst",
    "app_hash",
    "columns",
    "dataset",
    "department",
    "expires_at",
    "issued_at",
    "job",
    "key_id",
    "max_epsilon",
    "purpose",
    "spec_fingerprint",
)
_REISSUE = (
    "ask the department's privacy officer to issue it again with `silobridge officer approve "
    "--spec job.toml --app-hash HEX ...`"
)


def key_id_of(raw_public_key: bytes) -> str:
    """The short fingerprint approvals name their key by: 16 hex of SHA-256 of the raw key.

    Args:
        raw_public_key: The 32 raw bytes of an ed25519 public key.

    Raises:
        ConfigError: The key is not 32 bytes long.
    """
    if len(raw_public_key) != PUBLIC_KEY_BYTES:
        raise ConfigError(
            f"an ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(raw_public_key)}",
            "use the officer.pub written by `silobridge officer keygen`",
        )
    return hashlib.sha256(raw_public_key).hexdigest()[:_KEY_ID_HEX]


def format_time(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a `Z` suffix, e.g. `2027-01-01T00:00:00Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _utc(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ConfigError(f"approval `{name}` must be a datetime, got {_shown(value)}")
    offset = value.utcoffset()
    if offset is None:
        raise ConfigError(
            f"approval `{name}` {value.isoformat()} has no time zone",
            "give times in UTC (e.g. 2027-01-01T00:00:00Z)",
        )
    if offset.total_seconds() != 0:
        raise ConfigError(
            f"approval `{name}` {value.isoformat()} is not in UTC",
            "give times in UTC (e.g. 2027-01-01T00:00:00Z)",
        )
    return value.astimezone(UTC)


def _utf8(name: str, value: str, hint: str) -> None:
    # A lone surrogate (JSON allows `"\ud800"`) is a valid Python string with no UTF-8 form,
    # so it could never be signed or verified: refuse it here, not when the bytes are made.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"approval `{name}` is not valid Unicode text (character {exc.start} is a lone "
            f"surrogate {value[exc.start]!r})",
            hint,
        ) from None


def _finite_number(value: object) -> float | None:
    """`value` as a finite float, or None if it is not a number or has no finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range (e.g. 10**400)
        return None
    return number if math.isfinite(number) else None


def _shown(value: object) -> str:
    """`repr(value)`, kept short: an absurd value in a file must not flood the message."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than `sys.get_int_max_str_digits()`
        return f"a value of type {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _name(name: str, value: object, pattern: re.Pattern[str], rule: str, source: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(
            f"approval `{name}` must be {rule}, got {_shown(value)}",
            f"write it exactly as {source}",
        )


@dataclass(frozen=True)
class Approval:
    """A privacy officer's approval: one job spec, run by one app for one analyst, may use
    `columns` of one dataset.

    The spec is named by `spec_fingerprint` (`job` and `purpose` repeat its name and purpose
    for people reading the file), the app by `app_hash`. Valid from `issued_at` (inclusive)
    to `expires_at` (exclusive), only under the officer key named by `key_id`; the jobs that
    use it together spend at most `max_epsilon` at the node (priced at the node's delta).
    """

    department: str
    dataset: str
    job: str
    purpose: str
    columns: frozenset[str]
    max_epsilon: float
    issued_at: datetime
    expires_at: datetime
    key_id: str
    analyst: str
    spec_fingerprint: str
    app_hash: str

    def __post_init__(self) -> None:
        node_rule = "1-40 characters of a-z, 0-9, _ or -"
        where = "the node config's [node] section has it"
        _name("department", self.department, _NODE_NAME_RE, node_rule, where)
        _name("dataset", self.dataset, _NODE_NAME_RE, node_rule, where)
        _name(
            "job",
            self.job,
            _JOB_NAME_RE,
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            "the job spec's `name` has it",
        )
        if not isinstance(self.purpose, str) or not self.purpose.strip():
            raise ConfigError(
                f"approval `purpose` must be a non-empty string, got {_shown(self.purpose)}",
                "state the purpose exactly as the job spec's `purpose` does",
            )
        if len(self.purpose) > _MAX_PURPOSE:
            raise ConfigError(
                f"approval `purpose` is longer than {_MAX_PURPOSE} characters",
                "use the job spec's `purpose`, which is at most 200 characters",
            )
        _utf8("purpose", self.purpose, "state the purpose exactly as the job spec's does")
        if (
            not isinstance(self.columns, frozenset)
            or not self.columns
            or not all(isinstance(c, str) and c.strip() for c in self.columns)
        ):
            raise ConfigError(
                "approval `columns` must be a non-empty set of column names, got "
                f"{_shown(self.columns)}",
                "name at least one conditional column",
            )
        for column in sorted(self.columns):
            _utf8("columns", column, "name the columns exactly as the node's schema does")
        epsilon = _finite_number(self.max_epsilon)
        if epsilon is None or epsilon <= 0:
            raise ConfigError(
                "approval `max_epsilon` must be a finite number > 0, got "
                f"{_shown(self.max_epsilon)}",
                "use the largest per-node epsilon the job may ask for, e.g. 1.0",
            )
        object.__setattr__(self, "max_epsilon", epsilon)
        issued = _utc("issued_at", self.issued_at)
        expires = _utc("expires_at", self.expires_at)
        if expires <= issued:
            raise ConfigError(
                f"approval expires ({format_time(expires)}) before it is issued "
                f"({format_time(issued)})",
                "give an expiry after the issue time",
            )
        object.__setattr__(self, "issued_at", issued)
        object.__setattr__(self, "expires_at", expires)
        if not isinstance(self.key_id, str) or not _KEY_ID_RE.fullmatch(self.key_id):
            raise ConfigError(
                f"approval `key_id` must be {_KEY_ID_HEX} lower-case hex digits, got "
                f"{_shown(self.key_id)}",
                "use the key id `silobridge officer keygen` printed",
            )
        _name(
            "analyst",
            self.analyst,
            _JOB_NAME_RE,
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            "the job spec's `analyst` has it (a spec without an analyst cannot be approved)",
        )
        _name(
            "spec_fingerprint",
            self.spec_fingerprint,
            _SHA256_RE,
            "64 lower-case hex digits",
            "`silobridge officer approve --spec job.toml` computes it",
        )
        _name(
            "app_hash",
            self.app_hash,
            _SHA256_RE,
            "64 lower-case hex digits",
            "`silobridge app hash` prints it for a released version",
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The fields as JSON values: sorted columns, times as `...Z` strings."""
        return {
            "analyst": self.analyst,
            "app_hash": self.app_hash,
            "columns": sorted(self.columns),
            "dataset": self.dataset,
            "department": self.department,
            "expires_at": format_time(self.expires_at),
            "issued_at": format_time(self.issued_at),
            "job": self.job,
            "key_id": self.key_id,
            "max_epsilon": self.max_epsilon,
            "purpose": self.purpose,
            "spec_fingerprint": self.spec_fingerprint,
        }

    def canonical_bytes(self) -> bytes:
        """The bytes the officer signs: sorted-key compact JSON (with the format), UTF-8."""
        document = {"format": APPROVAL_FORMAT, **self.to_json_dict()}
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical bytes: names this exact approval in audit logs."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


@dataclass(frozen=True)
class SignedApproval:
    """An approval and the officer's ed25519 signature over its canonical bytes."""

    approval: Approval
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_BYTES:
            raise ConfigError(
                f"an ed25519 signature is {SIGNATURE_BYTES} bytes, got {_shown(self.signature)}",
                _REISSUE,
            )


def _fingerprint(spec: JobEnvelope) -> str:
    # Imported here: the node's app gate reads approvals before an approved bundle loads
    # its own protobuf module, and the node's must not be in the descriptor pool by then.
    from vocab.serde import spec_fingerprint

    return spec_fingerprint(spec)


@dataclass(frozen=True)
class JobClaims:
    """What a job asks of a node that an approval must match.

    `fingerprint` is the spec's (`vocab.serde.spec_fingerprint`); `app_hash` the verified
    hash of the app bundle answering it, None when no gate verified one (then no approval
    can match).
    """

    name: str
    purpose: str
    columns: tuple[str, ...]
    epsilon: float
    analyst: str = ""
    fingerprint: str = ""
    app_hash: str | None = None

    @classmethod
    def from_spec(cls, spec: JobEnvelope, app_hash: str | None = None) -> JobClaims:
        """The claims of a job spec, answered by the app bundle `app_hash`."""
        return cls(
            spec.name,
            spec.purpose,
            tuple(spec.columns),
            float(spec.epsilon),
            spec.analyst,
            _fingerprint(spec),
            app_hash,
        )


def serialize_signed_approval(signed: SignedApproval) -> str:
    """The approval file's text (see the module docstring), ending in a newline."""
    document = {
        "format": APPROVAL_FORMAT,
        "approval": signed.approval.to_json_dict(),
        "signature": base64.b64encode(signed.signature).decode("ascii"),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _printable(text: str) -> str:
    # File names (undecodable bytes become surrogates) and keys or values quoted from a file
    # may hold lone surrogates; the message must still print, log and travel over gRPC.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _bad(source: str, problem: str, hint: str = _REISSUE) -> ConfigError:
    return ConfigError(_printable(f"approval file {source}: {problem}"), hint)


def _check_keys(source: str, table: Mapping[str, Any], where: str, keys: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(keys))
    missing = [key for key in keys if key not in table]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(f'`{k}`' for k in missing)}")
        if unknown:
            parts.append(f"has unknown {', '.join(f'`{k}`' for k in unknown)}")
        raise _bad(source, f"{where} {' and '.join(parts)}")


def _field_time(source: str, table: Mapping[str, Any], key: str) -> datetime:
    value = table[key]
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            offset = moment.utcoffset()
            if offset is not None and not offset:
                return moment
    raise _bad(source, f"`{key}` must be a UTC time like 2027-01-01T00:00:00Z, got {_shown(value)}")


def parse_signed_approval(text: str, source: str | Path) -> SignedApproval:
    """Reads an approval file's text.

    Args:
        text: The file's content.
        source: Where it came from (a path), named in every error.

    Returns:
        The approval and its signature; the signature is not checked here.

    Raises:
        ConfigError: The text is not JSON, not an approval document, or a field is missing,
            unknown or invalid. The message names `source` and the field. Any other
            failure to parse the text is also a ConfigError naming `source`: one bad file
            must not stop the node from reading the others.
    """
    where = str(source)
    try:
        return _parse(text, where)
    except ConfigError:
        raise
    except Exception as exc:
        # The file is untrusted input and one bad file must not stop every job (nor make
        # `officer inspect` print a traceback): whatever the checks above missed still
        # becomes an error that names the file, and the folder's other approvals stay usable.
        raise _bad(where, f"cannot be read as an approval ({type(exc).__name__}: {exc})") from None


def _parse(text: str, where: str) -> SignedApproval:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(where, f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError:  # an integer literal longer than Python reads (4300 digits)
        raise _bad(where, "is not valid JSON (it holds a number too long to read)") from None
    except RecursionError:
        raise _bad(where, "is not valid JSON (it is nested too deeply to read)") from None
    if not isinstance(document, dict):
        raise _bad(where, "must hold a JSON object")
    if document.get("format") in _OLD_FORMATS:
        raise _bad(
            where,
            f"has the old format {document['format']!r}, which binds no job spec, app or "
            "analyst; nodes no longer accept it",
            "ask the department's privacy officer to re-issue it for the exact job spec and "
            "app: `silobridge officer approve --spec job.toml --app-hash HEX ...`",
        )
    if document.get("format") != APPROVAL_FORMAT:
        raise _bad(
            where,
            f"is not a silobridge column approval (`format` is {_shown(document.get('format'))}, "
            f"expected {APPROVAL_FORMAT!r})",
            "keep only approval files (made by `silobridge officer approve`) in this folder",
        )
    _check_keys(where, document, "the document", ("format", "approval", "signature"))
    fields = document["approval"]
    if not isinstance(fields, dict):
        raise _bad(where, "`approval` must be a JSON object")
    _check_keys(where, fields, "`approval`", _FIELDS)
    columns = fields["columns"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _bad(where, f"`columns` must be a list of column names, got {_shown(columns)}")
    if len(set(columns)) != len(columns):
        raise _bad(where, f"`columns` names a column twice: {_shown(columns)}")
    signature = document["signature"]
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise _bad(where, "`signature` is not base64 text") from None
    if len(raw_signature) != SIGNATURE_BYTES:
        raise _bad(
            where,
            f"`signature` is {len(raw_signature)} bytes, an ed25519 signature is {SIGNATURE_BYTES}",
        )
    try:
        approval = Approval(
            department=fields["department"],
            dataset=fields["dataset"],
            job=fields["job"],
            purpose=fields["purpose"],
            columns=frozenset(columns),
            max_epsilon=fields["max_epsilon"],
            issued_at=_field_time(where, fields, "issued_at"),
            expires_at=_field_time(where, fields, "expires_at"),
            key_id=fields["key_id"],
            analyst=fields["analyst"],
            spec_fingerprint=fields["spec_fingerprint"],
            app_hash=fields["app_hash"],
        )
    except ConfigError as exc:
        if exc.message.startswith("approval file "):
            raise
        raise _bad(where, exc.message.removeprefix("approval "), _REISSUE) from None
    return SignedApproval(approval, raw_signature)


def load_signed_approval(path: Path) -> SignedApproval:
    """Reads and parses one approval file.

    Raises:
        ConfigError: The file cannot be read, is not UTF-8, or is not a valid approval.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _bad(
            str(path), f"cannot be read: {exc.strerror or exc}", "check the file's permissions"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    return parse_signed_approval(text, path)
