"""The coordinator's claim on a job: its signature over the job id and the exact spec bytes
a message carries, which a node checks against the coordinator key its officer trusts.

The spec names the analyst and project the job is charged to; the coordinator service
sets them from the caller's credential. With the claim, a node knows that the coordinator
it trusts (not whoever reached the SuperLink) vouches for that analyst, that project and
every other field of this spec under this job id.
"""

from __future__ import annotations

import hashlib

from vocab.identity_key import IdentityKey, PublicIdentity

__all__ = ["CLAIM_SIG", "claim_holds", "claim_message", "sign_claim"]

CLAIM_SIG = "claim_sig"
"""The JOB record's key for the claim's signature (base64 ed25519)."""

_DOMAIN = b"silobridge.v1 job claim\n"
"""Keeps a claim's signature from meaning anything else the same key signs (audit heads)."""


def claim_message(job_id: str, spec_bytes: bytes) -> bytes:
    """The bytes signed: a domain tag, the job id and the SHA-256 of the spec's bytes."""
    return _DOMAIN + job_id.encode() + b"\n" + hashlib.sha256(spec_bytes).hexdigest().encode()


def sign_claim(key: IdentityKey, job_id: str, spec_bytes: bytes) -> str:
    """The coordinator's signature on `job_id` running exactly `spec_bytes`."""
    return key.sign(claim_message(job_id, spec_bytes))


def claim_holds(key: PublicIdentity, job_id: str, spec_bytes: bytes, signature: str) -> bool:
    """Whether `signature` is `key`'s claim on `job_id` running exactly `spec_bytes`."""
    return bool(signature) and key.verifies(signature, claim_message(job_id, spec_bytes))
