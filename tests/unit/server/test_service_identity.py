"""A caller's identity from their client certificate, on its own and behind a real gRPC server."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.service.identity import (
    PEER_CERT_KEY,
    Caller,
    Role,
    Unauthenticated,
    caller_from_auth_context,
    caller_from_certificate,
)
from silobridge.certs import DeploymentCerts, issue_client_cert, make_deployment_certs
from vocab.roles import ROLES

_METHOD = "/silobridge.test.Whoami/Call"


def _pem(
    attributes: Sequence[tuple[x509.ObjectIdentifier, str]],
    usages: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
) -> bytes:
    """A self-signed certificate with this subject: the chain is the handshake's business."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


CN, OU = NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME
CLIENT, SERVER = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH


@pytest.fixture
def deployment(tmp_path: Path) -> DeploymentCerts:
    return make_deployment_certs(tmp_path / "deployment")


def test_roles_are_the_shared_vocabulary() -> None:
    assert tuple(r.value for r in Role) == ROLES


def test_an_issued_certificate_names_its_caller(
    deployment: DeploymentCerts, tmp_path: Path
) -> None:
    files = issue_client_cert(deployment.folder, tmp_path, role="officer", name="k.li")
    caller = caller_from_certificate(files.cert.read_bytes())
    assert caller == Caller("k.li", Role.OFFICER)
    assert caller.label() == "officer:k.li"


def test_the_coordinators_server_certificate_is_not_a_caller(
    deployment: DeploymentCerts,
) -> None:
    with pytest.raises(Unauthenticated, match="no clientAuth") as caught:
        caller_from_certificate(deployment.server_cert.read_bytes())
    assert "silobridge certs issue" in caught.value.hint


def test_the_ca_certificate_is_not_a_caller(deployment: DeploymentCerts) -> None:
    with pytest.raises(Unauthenticated, match="no clientAuth"):
        caller_from_certificate(deployment.ca_cert.read_bytes())


@pytest.mark.parametrize("garbage", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\n"])
def test_garbage_is_not_a_certificate(garbage: bytes) -> None:
    with pytest.raises(Unauthenticated, match=r"is not a PEM X\.509 certificate"):
        caller_from_certificate(garbage)


@pytest.mark.parametrize(
    ("subject", "usages", "problem"),
    [
        ([(CN, "r.ahmed"), (OU, "analyst"), (OU, "operator")], [CLIENT], "2 role \\(OU\\)"),
        ([(CN, "r.ahmed"), (OU, "admin")], [CLIENT], "the role 'admin', which is not one of"),
        ([(CN, "r.ahmed"), (OU, "Analyst")], [CLIENT], "the role 'Analyst'"),
        ([(CN, "r.ahmed")], [CLIENT], "0 role \\(OU\\) entries"),
        ([(OU, "analyst")], [CLIENT], "0 common name \\(CN\\) entries"),
        ([(CN, "a"), (CN, "b"), (OU, "analyst")], [CLIENT], "2 common name \\(CN\\) entries"),
        ([(CN, "r ahmed"), (OU, "analyst")], [CLIENT], "'r ahmed', which is not a valid caller"),
        ([(CN, "../x"), (OU, "analyst")], [CLIENT], "not a valid caller name"),
        ([(CN, "r.ahmed"), (OU, "analyst")], None, "no clientAuth"),
        ([(CN, "r.ahmed"), (OU, "analyst")], [SERVER], "no clientAuth"),
    ],
)
def test_a_certificate_must_name_one_valid_caller_with_one_role(
    subject: list[tuple[x509.ObjectIdentifier, str]],
    usages: list[x509.ObjectIdentifier] | None,
    problem: str,
) -> None:
    with pytest.raises(Unauthenticated, match=problem) as caught:
        caller_from_certificate(_pem(subject, usages))
    assert caught.value.message.startswith("the client certificate ")
    assert "ask the deployment's operator" in caught.value.hint


def test_a_well_formed_certificate_from_anywhere_is_read_without_checking_its_chain() -> None:
    """The chain is the TLS handshake's job: this is why the server must require client certs."""
    pem = _pem([(CN, "r.ahmed"), (OU, "analyst")])
    assert caller_from_certificate(pem) == Caller("r.ahmed", Role.ANALYST)


def test_an_auth_context_without_a_peer_certificate_is_unauthenticated() -> None:
    context = {
        "transport_security_type": [b"ssl"],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
    }
    with pytest.raises(Unauthenticated, match="no client certificate"):
        caller_from_auth_context(context)
    with pytest.raises(Unauthenticated, match="no client certificate"):
        caller_from_auth_context({PEER_CERT_KEY: []})


def test_an_auth_context_with_two_peer_certificates_is_unauthenticated(
    deployment: DeploymentCerts, tmp_path: Path
) -> None:
    pem = issue_client_cert(deployment.folder, tmp_path, role="analyst", name="a").cert
    with pytest.raises(Unauthenticated, match="2 peer certificates"):
        caller_from_auth_context({PEER_CERT_KEY: [pem.read_bytes()] * 2})


# --- a real gRPC server on loopback, requiring client certificates of the deployment CA ---


@dataclass
class _Server:
    port: int
    seen: list[dict[str, list[bytes]]]


def _whoami(seen: list[dict[str, list[bytes]]]) -> grpc.GenericRpcHandler:
    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        auth = context.auth_context()
        seen.append(dict(auth))
        try:
            return caller_from_auth_context(auth).label().encode()
        except Unauthenticated as err:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, err.message)

    handler = grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=bytes, response_serializer=bytes
    )
    service, method = _METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(service, {method: handler})


def _serve(deployment: DeploymentCerts, *, require_client_auth: bool) -> Iterator[_Server]:
    seen: list[dict[str, list[bytes]]] = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((_whoami(seen),))
    credentials = grpc.ssl_server_credentials(
        [(deployment.server_key.read_bytes(), deployment.server_cert.read_bytes())],
        root_certificates=deployment.ca_cert.read_bytes(),
        require_client_auth=require_client_auth,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    assert port
    server.start()
    try:
        yield _Server(port, seen)
    finally:
        server.stop(grace=None).wait(10)


@pytest.fixture
def strict_server(deployment: DeploymentCerts) -> Iterator[_Server]:
    yield from _serve(deployment, require_client_auth=True)


@pytest.fixture
def lax_server(deployment: DeploymentCerts) -> Iterator[_Server]:
    yield from _serve(deployment, require_client_auth=False)


def _call(port: int, ca: Path, cert: Path | None = None, key: Path | None = None) -> bytes:
    # The default deployment's server certificate covers 127.0.0.1 (an IP SAN) and
    # localhost, so the address needs no ssl_target_name_override.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        response: bytes = channel.unary_unary(_METHOD)(b"", timeout=10)
        return response


def test_grpc_hands_the_issued_certificate_to_the_servicer(
    strict_server: _Server, deployment: DeploymentCerts, tmp_path: Path
) -> None:
    files = issue_client_cert(deployment.folder, tmp_path / "p", role="analyst", name="r.ahmed")
    assert _call(strict_server.port, files.ca, files.cert, files.key) == b"analyst:r.ahmed"
    [auth] = strict_server.seen
    # What gRPC 1.8x's auth_context holds after a mutual-TLS handshake (to 127.0.0.1, so no
    # SNI and no `ssl_requested_server_name`); there is no `x509_pem_cert_chain` entry.
    assert {
        "transport_security_type",
        "security_level",
        "ssl_session_reused",
        "x509_subject",
        "x509_common_name",
        PEER_CERT_KEY,
    } <= set(auth)
    assert auth["x509_subject"] == [b"CN=r.ahmed,OU=analyst,O=silobridge"]
    assert auth["x509_common_name"] == [b"r.ahmed"]
    assert auth[PEER_CERT_KEY] == [files.cert.read_bytes()]


def _refused(port: int, ca: Path, cert: Path | None = None, key: Path | None = None) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(port, ca, cert, key)
    error = caught.value
    assert isinstance(error, grpc.Call)
    # The server aborts the handshake; the client only sees the connection go, e.g.
    # "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:PORT:
    # Socket closed" -- UNAVAILABLE, not UNAUTHENTICATED, and no word of why.
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().startswith("failed to connect to all addresses")


def test_a_client_certificate_of_another_ca_fails_the_handshake(
    strict_server: _Server, deployment: DeploymentCerts, tmp_path: Path
) -> None:
    foreign = make_deployment_certs(tmp_path / "foreign")
    files = issue_client_cert(foreign.folder, tmp_path / "p", role="operator", name="mallory")
    _refused(strict_server.port, deployment.ca_cert, files.cert, files.key)
    assert strict_server.seen == []


def test_a_client_without_a_certificate_fails_the_handshake(
    strict_server: _Server, deployment: DeploymentCerts
) -> None:
    _refused(strict_server.port, deployment.ca_cert)
    assert strict_server.seen == []


def test_the_servers_own_certificate_fails_the_handshake_as_a_client(
    strict_server: _Server, deployment: DeploymentCerts
) -> None:
    """BoringSSL already refuses a serverAuth-only certificate from a client ("unsupported
    certificate purpose"); `caller_from_certificate` refusing it too is a second line."""
    _refused(strict_server.port, deployment.ca_cert, deployment.server_cert, deployment.server_key)
    assert strict_server.seen == []


def test_a_server_not_requiring_client_certs_gets_none_and_lets_no_one_in(
    lax_server: _Server, deployment: DeploymentCerts, tmp_path: Path
) -> None:
    """With require_client_auth=False gRPC does not even ask for a client certificate: a
    client holding a valid one still arrives without it, and the caller is refused."""
    files = issue_client_cert(deployment.folder, tmp_path / "p", role="analyst", name="r.ahmed")
    with pytest.raises(grpc.RpcError) as caught:
        _call(lax_server.port, files.ca, files.cert, files.key)
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no client certificate" in error.details()
    [auth] = lax_server.seen
    assert PEER_CERT_KEY not in auth and "x509_subject" not in auth
