"""The coordinator's claim on a job: it holds for exactly the job id, spec bytes and key
it was made for, and nothing else the same key signs passes as one."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vocab.audit_chain import head_message
from vocab.identity_key import IdentityKey
from vocab.job_claim import claim_holds, claim_message, sign_claim


def _key() -> IdentityKey:
    return IdentityKey(Ed25519PrivateKey.generate())


def test_a_claim_holds_for_its_job_and_spec_only() -> None:
    key, other = _key(), _key()
    spec = b"\x0a\x05counts analyst=r.ahmed"
    signature = sign_claim(key, "counts-7", spec)
    assert claim_holds(key.public, "counts-7", spec, signature)
    assert not claim_holds(key.public, "counts-8", spec, signature)  # another job id
    assert not claim_holds(key.public, "counts-7", spec + b"!", signature)  # another spec
    assert not claim_holds(other.public, "counts-7", spec, signature)  # another key
    assert not claim_holds(key.public, "counts-7", spec, "")
    assert not claim_holds(key.public, "counts-7", spec, "not base64 at all")


def test_an_audit_head_signature_is_no_claim() -> None:
    key = _key()
    digest = "ab" * 32
    head_signature = key.sign(head_message(3, digest))
    assert not claim_holds(key.public, "3", digest.encode(), head_signature)
    assert claim_message("j", b"s").startswith(b"silobridge.v1 job claim\n")
