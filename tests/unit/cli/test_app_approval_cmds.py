"""`officer approve-app | apps` at the node, `coordinator approve-app | apps` at the coordinator."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from clients.node_config import load_node_config
from clients.runtime.app_gate import judge_bundle
from silobridge.cli.main import app
from silobridge.coordinator_apps import coordinator_apps
from silobridge.officer_keys import generate_key_pair
from testkit.synthetic import write_node

runner = CliRunner()
BUNDLE = b"release bytes"
HASH = "0d1f" + "7" * 60


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in output
    return result.exit_code, output


def test_an_officer_approves_a_hash_and_the_node_runs_that_bundle(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    key = cfg.config_path.parent / "officer" / "officer.key"
    value = hashlib.sha256(BUNDLE).hexdigest()
    code, out = _invoke(
        "officer", "approve-app", value, "--key", str(key),
        "--node-config", str(cfg.config_path), "--label", "silobridge 0.8", "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["app_hash"] == value
    assert judge_bundle(load_node_config(cfg.config_path), BUNDLE, value).approved
    code, out = _invoke("officer", "apps", "--node-config", str(cfg.config_path), "--json")
    # write_node's officer approved this release already; now the new one as well.
    assert code == 0 and {a["app_hash"] for a in json.loads(out)} >= {value}


def test_a_key_the_node_does_not_trust_is_refused(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    other = generate_key_pair(tmp_path / "other")
    code, out = _invoke(
        "officer", "approve-app", HASH, "--key", str(other.private_key),
        "--node-config", str(cfg.config_path),
    )  # fmt: skip
    assert code == 2 and "node would ignore this approval" in out


def test_a_malformed_hash_or_two_sources_are_refused(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    key = str(cfg.config_path.parent / "officer" / "officer.key")
    base = ("officer", "approve-app", "--key", key, "--node-config", str(cfg.config_path))
    code, out = _invoke(*base, "xyz")
    assert code == 2 and "64 hex characters" in out
    code, out = _invoke(*base, HASH, "--checkout", str(tmp_path))
    assert code == 2 and "exactly one of APP_HASH and --checkout" in out


def test_the_coordinator_operator_approves_a_serverapp_bundle(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code, out = _invoke("coordinator", "approve-app", "--state-dir", str(home), HASH)
    assert code == 0, out
    code, out = _invoke("coordinator", "approve-app", "--state-dir", str(home), HASH)
    assert code == 0  # approving again changes nothing
    assert [a.app_hash for a in coordinator_apps(home)] == [HASH]
    code, out = _invoke("coordinator", "apps", "--state-dir", str(home))
    assert code == 0 and HASH in re.sub(r"\s", "", out)
    # A file renamed to another hash approves nothing.
    (home / "apps" / f"{HASH}.json").rename(home / "apps" / f"{'e' * 64}.json")
    assert coordinator_apps(home) == []


def test_the_coordinator_refuses_a_bad_hash_and_a_missing_home(tmp_path: Path) -> None:
    code, out = _invoke("coordinator", "approve-app", "--state-dir", str(tmp_path), "nothex")
    assert code == 2 and "64 lowercase hex" in out
    code, out = _invoke("coordinator", "approve-app", "--state-dir", str(tmp_path / "no"), HASH)
    assert code == 2 and "no coordinator home" in out
