"""`silobridge certs`, `node key`, and the TLS refusals of `coordinator start` / `node start`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from server.home.coordinator_home import CoordinatorHome
from silobridge.cli.main import app
from testkit.synthetic import make_rows, write_node
from vocab.identity_key import public_identity_from_pem

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


def test_certs_init_writes_ca_server_and_node_keys(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    code, text = _invoke(
        "certs", "init", "--out", str(out), "--host", "coord.example",
        "--department", "north", "--department", "south", "--json",
    )  # fmt: skip
    assert code == 0, text
    files = json.loads(text)
    assert files["hosts"] == ["coord.example"]
    for key in ("ca_key", "server_key"):
        assert stat.S_IMODE(Path(files[key]).stat().st_mode) == 0o600
    assert set(files["node_keys"]) == {"north", "south"}
    assert Path(files["node_keys"]["north"]["public"]).read_text().startswith("ecdsa-sha2-")


def test_certs_init_refuses_to_overwrite_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert _invoke("certs", "node-key", "--out", str(out), "--department", "north")[0] == 0
    before = sorted(p.name for p in out.iterdir())
    code, text = _invoke("certs", "init", "--out", str(out), "--department", "north")
    assert code == 2
    assert "refusing to overwrite" in text and "--force" in text
    assert sorted(p.name for p in out.iterdir()) == before
    code, text = _invoke("certs", "init", "--out", str(out), "--department", "north", "--force")
    assert code == 0, text


def test_coordinator_start_refuses_clear_text_off_loopback(tmp_path: Path) -> None:
    code, text = _invoke(
        "coordinator", "start", "--state-dir", str(tmp_path / "home"),
        "--fleet-address", "0.0.0.0:19092",
    )  # fmt: skip
    assert code == 2
    assert "refusing to run the coordinator without TLS on 0.0.0.0:19092" in text
    assert "--insecure" in text
    assert not (tmp_path / "home").exists()


def test_coordinator_start_refuses_certs_with_insecure(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    assert _invoke("certs", "init", "--out", str(certs))[0] == 0
    code, text = _invoke(
        "coordinator", "start", "--state-dir", str(tmp_path / "home"),
        "--certs", str(certs), "--insecure",
    )  # fmt: skip
    assert code == 2
    assert "both TLS certificates and --insecure" in text


def test_coordinator_start_names_a_certs_folder_that_lacks_files(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    code, text = _invoke(
        "coordinator", "start", "--state-dir", str(tmp_path / "home"),
        "--certs", str(tmp_path / "certs"),
    )  # fmt: skip
    assert code == 2
    assert "lacks ca.pem, server.pem, server.key" in text


def test_node_start_refuses_clear_text_to_a_remote_coordinator(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "north", "north", 3.0, make_rows(50, 1))
    code, text = _invoke(
        "node", "start", "--config", str(cfg.config_path), "--coordinator", "coord.example:9092"
    )
    assert code == 2
    assert "refusing to run the node without TLS on coord.example:9092" in text


def test_node_key_prints_the_identity_public_key(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "north", "north", 3.0, make_rows(50, 1))
    out = tmp_path / "north.identity.pem"
    code, text = _invoke("node", "key", "--config", str(cfg.config_path), "--out", str(out))
    assert code == 0, text
    identity = public_identity_from_pem(out.read_bytes())
    assert out.read_text() in text
    # The same key on a second call: it is made once, beside the ledger.
    code, again = _invoke("node", "key", "--config", str(cfg.config_path))
    assert code == 0 and out.read_text() in again and identity.key_id in again


def test_node_register_refuses_bad_keys_before_contacting_anyone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    certs = tmp_path / "certs"
    assert _invoke("certs", "init", "--out", str(certs), "--department", "north")[0] == 0
    cfg = write_node(tmp_path / "north", "north", 3.0, make_rows(50, 1))
    identity = tmp_path / "id.pem"
    assert _invoke("node", "key", "--config", str(cfg.config_path), "--out", str(identity))[0] == 0
    base = ("node", "register", "--coordinator-home", str(home), "--department", "north")
    # The private half of the SuperNode key instead of the .pub.
    code, text = _invoke(
        *base, "--flower-key", str(certs / "supernode-north.key"), "--identity-key", str(identity)
    )
    assert code == 2 and "not an OpenSSH public key" in text
    # The SuperNode key where the identity key belongs.
    code, text = _invoke(
        *base, "--flower-key", str(certs / "supernode-north.pub"),
        "--identity-key", str(certs / "supernode-north.pub"),
    )  # fmt: skip
    assert code == 2 and "not a PEM ed25519 public key" in text
    # Another key already on record for the department.
    other = write_node(tmp_path / "other", "other", 3.0, make_rows(50, 2))
    other_pem = tmp_path / "other.pem"
    assert (
        _invoke("node", "key", "--config", str(other.config_path), "--out", str(other_pem))[0] == 0
    )
    CoordinatorHome(home).nodes.register("north", other_pem.read_bytes())
    code, text = _invoke(
        *base, "--flower-key", str(certs / "supernode-north.pub"), "--identity-key", str(identity)
    )
    assert code == 2 and "already has node identity key" in text
    # A remote Control API in clear text.
    code, text = _invoke(
        *base, "--flower-key", str(certs / "supernode-north.pub"),
        "--identity-key", str(identity), "--control-address", "10.0.0.5:9093", "--replace",
    )  # fmt: skip
    assert code == 2 and "refusing to run the registration without TLS" in text
