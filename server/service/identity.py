"""Who is calling the coordinator service: a caller's name and role, read from their certificate.

A caller's identity is the client certificate `silobridge certs issue` made for them: the
subject's CN is their name, its OU their role. This module only reads it; it takes the
mapping `grpc.ServicerContext.auth_context()` returns, so it needs no gRPC import.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vocab.errors import SilobridgeError
from vocab.roles import ROLE_NAME_RE

__all__ = [
    "PEER_CERT_KEY",
    "Caller",
    "PermissionDenied",
    "Role",
    "Unauthenticated",
    "caller_from_auth_context",
    "caller_from_certificate",
]

PEER_CERT_KEY = "x509_pem_cert"
"""Where gRPC's auth context holds the peer's certificate (PEM) after a TLS handshake."""

_ASK = "ask the deployment's operator for a client certificate made by `silobridge certs issue`"


class Role(enum.Enum):
    """What a caller may do; the value is the OU of their certificate (`vocab.roles.ROLES`)."""

    ANALYST = "analyst"
    OFFICER = "officer"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the coordinator service's API."""

    name: str
    role: Role

    def label(self) -> str:
        """`role:name`, e.g. `analyst:r.ahmed`: how logs and audit records name the caller."""
        return f"{self.role.value}:{self.name}"


class Unauthenticated(SilobridgeError):
    """The caller presented no usable client certificate (status UNAUTHENTICATED)."""


class PermissionDenied(SilobridgeError):
    """The caller is known, but their role may not do what they asked (PERMISSION_DENIED)."""


def _refuse(problem: str) -> Unauthenticated:
    return Unauthenticated(f"the client certificate {problem}", _ASK)


def _single(cert: x509.Certificate, oid: x509.ObjectIdentifier, what: str) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise _refuse(
            f"has {len(values)} {what} entries in its subject "
            f"({cert.subject.rfc4514_string()}), not exactly one"
        )
    value = values[0].value
    if not isinstance(value, str):
        raise _refuse(f"has a {what} that is not text")
    return value


def caller_from_certificate(pem: bytes) -> Caller:
    """The caller a client certificate (PEM, as gRPC hands it over) names.

    This does NOT verify the certificate's chain, dates or signature: the TLS handshake
    already did, and only that makes the result trustworthy. Call it only for connections
    the server accepted with the deployment CA as its only trusted root and client
    certificates required (`grpc.ssl_server_credentials(..., require_client_auth=True)`).

    Raises:
        Unauthenticated: If the bytes are not a PEM certificate, it lacks clientAuth in its
            extended key usage (a server's certificate), or its subject does not hold
            exactly one CN that is a valid caller name and exactly one OU that is a role.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise _refuse("is not a PEM X.509 certificate") from None
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = x509.ExtendedKeyUsage([])
    except ValueError as err:
        raise _refuse(f"has extensions that cannot be read ({err})") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usage:
        raise _refuse(
            "is not for clients (no clientAuth in its extended key usage): it is a server's "
            "or a node's certificate, not a person's"
        )
    name = _single(cert, NameOID.COMMON_NAME, "common name (CN)")
    if not ROLE_NAME_RE.fullmatch(name):
        raise _refuse(f"names {name!r}, which is not a valid caller name")
    unit = _single(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "role (OU)")
    try:
        role = Role(unit)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise _refuse(f"has the role {unit!r}, which is not one of {roles}") from None
    return Caller(name, role)


def caller_from_auth_context(auth_context: Mapping[str, Sequence[bytes]]) -> Caller:
    """The caller of a gRPC call, from what `grpc.ServicerContext.auth_context()` returns.

    The same caveat as `caller_from_certificate`: the server must require client
    certificates signed by the deployment CA, or the certificate here proves nothing.

    Raises:
        Unauthenticated: If the connection carried no client certificate, or one that
            `caller_from_certificate` refuses.
    """
    pems = auth_context.get(PEER_CERT_KEY, ())
    if not pems:
        raise Unauthenticated(
            "no client certificate came with the call",
            "connect over TLS with the .crt and .key `silobridge certs issue` made for you; "
            "if you have none, ask the deployment's operator for them",
        )
    if len(pems) != 1:
        raise Unauthenticated(
            f"the call carried {len(pems)} peer certificates, not one",
            "connect with the single client certificate `silobridge certs issue` made for you",
        )
    return caller_from_certificate(pems[0])
