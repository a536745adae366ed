"""What a job is submitted with (the encoded spec, the output folder, the mode), and the
Flower run config of the relay run that carries every job (`server/relay/`)."""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocab.errors import JobSpecError
from vocab.serde import job_from_bytes, job_to_bytes
from vocab.spec import JobEnvelope

__all__ = [
    "RelayConfig",
    "RunConfig",
    "RunMode",
    "decode_relay_config",
    "decode_run_config",
    "encode_run_config",
]


class RunMode(enum.Enum):
    """What the ServerApp does with a submitted job."""

    RUN = "run"
    """Admit it against the central caps, train, write the result bundle."""
    QUOTE = "quote"
    """A dry run: ask every node what the job would cost it; nothing is charged anywhere."""


_JOB_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,160}$")
_APP_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_LOOPBACK_RE = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$")


@dataclass(frozen=True)
class RunConfig:
    """A decoded submission; `out` is None for quotes (they write no bundle).

    `job_id` is set when the coordinator service submitted the run: its job store's id,
    kept across a restart so the nodes recognise rounds they already answered. Without it
    the job id is the job's name and Flower's run id.
    """

    spec: JobEnvelope
    mode: RunMode
    out: Path | None
    job_id: str = ""
    app_hash: str = ""
    """The hash of the app bundle the job's messages run in at the nodes, when known."""


def decode_run_config(run_config: dict[str, Any]) -> RunConfig:
    """Decode the run config `silobridge job run|quote` wrote.

    Raises:
        JobSpecError: If a key is missing or malformed.
    """
    raw = str(run_config.get("job", ""))
    out = str(run_config.get("out", ""))
    mode_raw = str(run_config.get("mode", "") or RunMode.RUN.value)
    try:
        mode = RunMode(mode_raw)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in RunMode)
        raise JobSpecError(f"run config `mode` = {mode_raw!r} is not one of {allowed}") from None
    if not raw or (mode is RunMode.RUN and not out):
        raise JobSpecError(
            "run config lacks `job` or `out`",
            "submit jobs with `silobridge job run SPEC --out DIR` (or `job quote SPEC`), "
            "not plain `flwr run`",
        )
    job_id = str(run_config.get("job_id", "") or "")
    if job_id and not _JOB_ID_RE.match(job_id):
        raise JobSpecError(f"run config `job_id` = {job_id[:80]!r} is not a job id")
    try:
        spec = job_from_bytes(base64.b64decode(raw, validate=True))
    except binascii.Error as err:
        raise JobSpecError(f"run config `job` is not base64: {err}") from err
    app_hash = str(run_config.get("app", "") or "")
    if app_hash and not _APP_HASH_RE.match(app_hash):
        raise JobSpecError(f"run config `app` = {app_hash[:80]!r} is not a bundle hash")
    return RunConfig(spec, mode, Path(out) if out else None, job_id, app_hash)


def encode_run_config(
    spec: JobEnvelope, out: Path | None, mode: RunMode, job_id: str, app_hash: str = ""
) -> dict[str, str]:
    """The submission `decode_run_config` reads back."""
    return {
        "job": base64.b64encode(job_to_bytes(spec)).decode(),
        "out": str(out) if out is not None else "",
        "mode": mode.value,
        "job_id": job_id,
        "app": app_hash,
    }


@dataclass(frozen=True)
class RelayConfig:
    """Where the relaying ServerApp attaches, and the secret that admits it."""

    address: str
    token: str


def decode_relay_config(run_config: dict[str, Any]) -> RelayConfig:
    """The relay run's config (`relay`, `relay_token`).

    Raises:
        JobSpecError: If either is missing, or the address is not on loopback (the relay
            link is a local one between the service and its own run).
    """
    address = str(run_config.get("relay", ""))
    token = str(run_config.get("relay_token", ""))
    if not address or not token:
        raise JobSpecError(
            "run config lacks `relay` or `relay_token`",
            "jobs go through the coordinator service (`silobridge job submit`) or "
            "`silobridge job run` on the coordinator host, not plain `flwr run`",
        )
    if not _LOOPBACK_RE.match(address):
        raise JobSpecError(f"run config `relay` = {address[:80]!r} is not a loopback HOST:PORT")
    return RelayConfig(address, token)
