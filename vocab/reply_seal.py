"""A node's seal on its reply: an ed25519 signature over everything the reply says.

The coordinator believes the department a reply speaks for only through this seal: it
looks up the key registered for the department the report names and checks the signature
over the reply's canonical digest. The digest covers the job id, the round and the message
kind the reply answers, the digest of the request exactly as the node received it (spec,
coordinator head, weights sent: a node's answer to a question a hostile SuperLink swapped
is not an answer to the coordinator's), and every config and metric record (report,
holdout histogram) and every array (weights) of the reply.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, RecordDict

from vocab.identity_key import IdentityKey, PublicIdentity

__all__ = ["SEAL", "content_digest", "reply_digest", "seal_reply", "seal_verifies"]

SEAL = "seal"  # ConfigRecord of a reply: the node's key id and its signature


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": hashlib.sha256(value).hexdigest()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def content_digest(content: RecordDict) -> str:
    """The SHA-256 (hex) of a message's records in canonical form, its seal left out."""
    canonical = json.dumps(_records(content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _records(content: RecordDict) -> dict[str, Any]:
    records: dict[str, Any] = {}
    for name, config in content.config_records.items():
        if name != SEAL:
            records[f"config/{name}"] = {k: _jsonable(v) for k, v in config.items()}
    for name, metrics in content.metric_records.items():
        records[f"metric/{name}"] = {k: _jsonable(v) for k, v in metrics.items()}
    for name, arrays in content.array_records.items():
        records[f"arrays/{name}"] = [
            hashlib.sha256(
                f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()
            ).hexdigest()
            for a in arrays.to_numpy_ndarrays()
        ]
    return records


def reply_digest(content: RecordDict, *, job_id: str, round: int, kind: str, request: str) -> bytes:
    """The SHA-256 of a reply's canonical form, bound to the request it answers."""
    canonical = json.dumps(
        {
            "job_id": job_id,
            "round": round,
            "kind": kind,
            "request": request,
            "records": _records(content),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def seal_reply(
    content: RecordDict, key: IdentityKey, *, job_id: str, round: int, kind: str, request: str
) -> RecordDict:
    """Adds the node's seal to `content` (in place) and returns it."""
    digest = reply_digest(content, job_id=job_id, round=round, kind=kind, request=request)
    content[SEAL] = ConfigRecord({"key_id": key.public.key_id, "signature": key.sign(digest)})
    return content


def seal_verifies(
    content: RecordDict,
    identity: PublicIdentity,
    *,
    job_id: str,
    round: int,
    kind: str,
    request: str,
) -> bool:
    """True when `content` carries a seal by `identity` over exactly this reply."""
    seal = content.config_records.get(SEAL)
    if seal is None:
        return False
    signature = seal.get("signature")
    if not isinstance(signature, str):
        return False
    digest = reply_digest(content, job_id=job_id, round=round, kind=kind, request=request)
    return identity.verifies(signature, digest)
