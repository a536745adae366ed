"""Daemon command lines: TLS, node authentication and the refusal to run in clear off loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from silobridge.daemons import (
    ControlRecord,
    CoordinatorAddresses,
    check_transport,
    is_loopback,
    superlink_argv,
    supernode_argv,
)
from vocab.errors import ConfigError

TLS = (Path("/c/ca.pem"), Path("/c/server.pem"), Path("/c/server.key"))


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_superlink_with_tls_authenticates_nodes() -> None:
    argv = superlink_argv(CoordinatorAddresses(), Path("/s/db"), TLS)
    assert _value(argv, "--ssl-ca-certfile") == "/c/ca.pem"
    assert _value(argv, "--ssl-certfile") == "/c/server.pem"
    assert _value(argv, "--ssl-keyfile") == "/c/server.key"
    assert "--enable-supernode-auth" in argv
    assert "--insecure" not in argv
    assert "--enable-supernode-auth" not in superlink_argv(
        CoordinatorAddresses(), Path("/s/db"), TLS, node_auth=False
    )


def test_superlink_without_tls_is_insecure_and_cannot_authenticate_nodes() -> None:
    """Flower 1.36 exits when --enable-supernode-auth comes with --insecure."""
    argv = superlink_argv(CoordinatorAddresses(), Path("/s/db"))
    assert "--insecure" in argv
    assert "--enable-supernode-auth" not in argv


def test_supernode_argv_tls_and_auth_key() -> None:
    argv = supernode_argv(
        Path("/n/node.toml"), "north", "coord:9092", 9094, Path("/c/ca.pem"), Path("/n/k")
    )
    assert _value(argv, "--root-certificates") == "/c/ca.pem"
    assert _value(argv, "--auth-supernode-private-key") == "/n/k"
    assert "--insecure" not in argv
    plain = supernode_argv(Path("/n/node.toml"), "north", "127.0.0.1:9092", 9094)
    assert "--insecure" in plain
    assert "--auth-supernode-private-key" not in plain


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:9092", True),
        ("127.8.0.1:9092", True),
        ("localhost:9092", True),
        ("[::1]:9092", True),
        ("0.0.0.0:9092", False),
        ("[::]:9092", False),
        ("10.0.0.5:9092", False),
        ("coord.example:9092", False),
        ("localhost.evil.example:9092", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_check_transport() -> None:
    check_transport(["127.0.0.1:1", "localhost:2"], tls=False, insecure=False, what="node")
    check_transport(["0.0.0.0:1"], tls=True, insecure=False, what="node")
    check_transport(["0.0.0.0:1"], tls=False, insecure=True, what="node")
    with pytest.raises(ConfigError, match="refusing to run the coordinator without TLS on 0"):
        check_transport(["127.0.0.1:1", "0.0.0.0:2"], tls=False, insecure=False, what="coordinator")
    with pytest.raises(ConfigError, match="both TLS certificates and --insecure"):
        check_transport(["127.0.0.1:1"], tls=True, insecure=True, what="node")


def test_control_record_round_trip(tmp_path: Path) -> None:
    assert ControlRecord.read(tmp_path) is None
    ControlRecord("127.0.0.1:9093", Path("/c/ca.pem")).write(tmp_path)
    assert ControlRecord.read(tmp_path) == ControlRecord("127.0.0.1:9093", Path("/c/ca.pem"))
    ControlRecord("127.0.0.1:9093", None).write(tmp_path)
    assert ControlRecord.read(tmp_path) == ControlRecord("127.0.0.1:9093", None)
    (tmp_path / "control.json").write_text("{")
    with pytest.raises(ConfigError, match="damaged"):
        ControlRecord.read(tmp_path)
