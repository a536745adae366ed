"""Deployment certificates and SuperNode keys: what TLS and Flower's node auth will accept."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from silobridge.certs import make_deployment_certs, make_node_key, read_node_public_key
from vocab.errors import ConfigError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_certificate_is_signed_by_the_ca_for_every_host(tmp_path: Path) -> None:
    certs = make_deployment_certs(tmp_path, ["coord.example", "10.0.0.5", "localhost"])
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["coord.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1"])
def test_a_tls_client_trusting_the_ca_completes_a_handshake(
    tmp_path: Path, server_name: str
) -> None:
    """A real TLS handshake on a socket pair, the client checking the default hosts' SANs."""
    certs = make_deployment_certs(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
    client_ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(right, server_side=True) as tls:
                tls.sendall(b"ok")
        except (OSError, ssl.SSLError) as err:
            errors.append(err)

    thread = threading.Thread(target=serve)
    thread.start()
    with client_ctx.wrap_socket(left, server_hostname=server_name) as tls:
        assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
    assert not errors


def test_private_keys_are_0600_and_nothing_is_overwritten(tmp_path: Path) -> None:
    certs = make_deployment_certs(tmp_path)
    assert _mode(certs.ca_key) == 0o600
    assert _mode(certs.server_key) == 0o600
    before = certs.ca_key.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        make_deployment_certs(tmp_path)
    assert certs.ca_key.read_bytes() == before
    make_deployment_certs(tmp_path, force=True)
    assert certs.ca_key.read_bytes() != before
    assert _mode(certs.ca_key) == 0o600


def test_a_bad_host_is_refused_before_any_file_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither an IP address nor a host name"):
        make_deployment_certs(tmp_path / "c", ["ok.example", "bad host"])
    assert not (tmp_path / "c").exists()


def test_node_key_is_what_flower_supernode_auth_loads(tmp_path: Path) -> None:
    """flower-supernode reads an OpenSSH EC private key; `flwr supernode register` an
    OpenSSH NIST-curve public key (flwr 1.36, supernode/cli/flower_supernode.py and
    cli/supernode/register.py)."""
    files = make_node_key(tmp_path, "north")
    assert _mode(files.private) == 0o600
    private = serialization.load_ssh_private_key(files.private.read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = serialization.load_ssh_public_key(read_node_public_key(files.public))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        make_node_key(tmp_path, "north")


def test_node_key_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid name"):
        make_node_key(tmp_path, "../evil")
    files = make_node_key(tmp_path, "north")
    with pytest.raises(ConfigError, match="not an OpenSSH public key"):
        read_node_public_key(files.private)
    with pytest.raises(ConfigError, match="cannot read"):
        read_node_public_key(tmp_path / "missing.pub")
