"""`silobridge budget`: show, set and history, for the central caps and for a node's budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.ledger.node_audit import audit_path_for
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from silobridge.cli.main import app
from testkit.synthetic import make_rows, write_node
from vocab.audit_chain import verify_chain
from vocab.audit_log import read_entries

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["budget", *args])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result.exit_code, output


@pytest.fixture
def home(tmp_path: Path) -> CoordinatorHome:
    root = tmp_path / "coordinator"
    root.mkdir()
    return CoordinatorHome(root)


def test_set_then_show_and_history(home: CoordinatorHome) -> None:
    where = ("--coordinator-home", str(home.root))
    code, out = _invoke("set", *where, "--analyst", "r.ahmed", "--epsilon", "5")
    assert code == 0, out
    assert "analyst r.ahmed" in out and "→ 5.0000" in out
    assert _invoke("set", *where, "--project", "fraud", "--epsilon", "2")[0] == 0
    assert _invoke("set", *where, "--analyst", "r.ahmed", "--epsilon", "4")[0] == 0
    budget = home.budget()
    budget.reserve("risk#1", "r.ahmed", "fraud", 1.0)
    budget.reserve("risk#2", "r.ahmed", "", 1.0)
    budget.settle("risk#2", 0.25)

    code, out = _invoke("show", *where, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["side"] == "coordinator"
    rows = {(s["kind"], s["key"]): s for s in shown["standings"]}
    analyst = rows[("analyst", "r.ahmed")]
    assert (analyst["cap"], analyst["reserved"], analyst["settled"]) == (4.0, 1.0, 0.25)
    assert (analyst["spent"], analyst["remaining"]) == (1.25, 2.75)
    assert rows[("project", "fraud")]["remaining"] == 1.0

    code, out = _invoke("show", *where)
    assert code == 0 and "r.ahmed" in out and "2.7500" in out

    code, out = _invoke("history", *where, "--json")
    assert code == 0, out
    history = json.loads(out)
    assert [(c["key"], c["old"], c["new"]) for c in history["cap_changes"]] == [
        ("r.ahmed", None, 5.0),
        ("fraud", None, 2.0),
        ("r.ahmed", 5.0, 4.0),
    ]
    assert [(c["job_id"], c["status"], c["counted"]) for c in history["charges"]] == [
        ("risk#1", "reserved", 1.0),
        ("risk#2", "settled", 0.25),
    ]
    code, out = _invoke("history", *where)
    assert code == 0 and "risk#2" in out and "cap changes" in out

    # Every cap change is in the coordinator's audit log, chained.
    entries = read_entries(home.audit_path)
    assert verify_chain(entries, home.identity().public).ok
    assert [(e.kind, e.data["key"], e.data["new"]) for e in entries] == [
        ("cap_change", "r.ahmed", 5.0),
        ("cap_change", "fraud", 2.0),
        ("cap_change", "r.ahmed", 4.0),
    ]


def test_show_on_an_empty_home(home: CoordinatorHome) -> None:
    code, out = _invoke("show", "--coordinator-home", str(home.root))
    assert code == 0 and "no caps set" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--analyst", "a", "--project", "p", "--epsilon", "1"], "exactly one of --analyst"),
        (["--epsilon", "1"], "exactly one of --analyst"),
        (["--analyst", "r.ahmed", "--epsilon", "-1"], "finite number >= 0"),
        (["--analyst", "r.ahmed", "--epsilon", "nan"], "finite number >= 0"),
        (["--analyst", "no spaces", "--epsilon", "1"], "not allowed"),
    ],
)
def test_bad_set_is_refused(home: CoordinatorHome, args: list[str], needle: str) -> None:
    code, out = _invoke("set", "--coordinator-home", str(home.root), *args)
    assert code == 2 and needle in out
    assert home.budget().history() == []


@pytest.mark.parametrize("command", ["show", "history"])
def test_exactly_one_source(tmp_path: Path, command: str) -> None:
    code, out = _invoke(command)
    assert code == 2 and "exactly one of --coordinator-home and --node-config" in out
    both = ("--coordinator-home", str(tmp_path), "--node-config", str(tmp_path / "n.toml"))
    code, out = _invoke(command, *both)
    assert code == 2 and "exactly one" in out


def test_a_missing_home_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    code, out = _invoke(
        "set", "--coordinator-home", str(missing), "--analyst", "a", "--epsilon", "1"
    )
    assert code == 2 and "no coordinator home" in out
    assert not missing.exists()


def test_node_side_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    code, out = _invoke("show", "--node-config", str(tmp_path / "node.toml"))
    assert code == 2 and "node.toml" in out


def test_node_officer_sets_scopes_opens_a_period_and_every_change_is_audited(
    tmp_path: Path,
) -> None:
    cfg = write_node(tmp_path / "alpha", "alpha", 3.0, make_rows(50, seed=1))
    where = ("--node-config", str(cfg.config_path))
    assert _invoke("set", *where, "--purpose", "fraud", "--epsilon", "1")[0] == 0
    code, out = _invoke("set", *where, "--analyst", "r.ahmed", "--epsilon", "0.5")
    assert code == 0 and "analyst r.ahmed: epsilon 0.5" in out
    code, out = _invoke("show", *where, "--json")
    assert code == 0, out
    view = json.loads(out)
    year = view["period"]
    assert [(s["scope"], s["epsilon"], s["spent"]) for s in view["scopes"]] == [
        (f"period {year}", 3.0, 0.0),
        ("analyst r.ahmed", 0.5, 0.0),
        ("purpose fraud", 1.0, 0.0),
    ]
    code, out = _invoke("set", *where, "--period", "next-year", "--epsilon", "2")
    assert code == 0 and "opened period 'next-year'" in out
    assert json.loads(_invoke("show", *where, "--json")[1])["period"] == "next-year"
    code, out = _invoke("set", *where, "--period", "next-year", "--epsilon", "2")
    assert code == 2 and "already had a period" in out
    code, out = _invoke("set", *where, "--project", "p", "--epsilon", "1")
    assert code == 2 and "not per project" in out
    code, out = _invoke("set", *where, "--epsilon", "nan")
    assert code != 0 and "epsilon" in out
    history = json.loads(_invoke("history", *where, "--json")[1])
    sources = [c["source"] for c in history["changes"]]
    assert sources == ["config", "officer", "officer", "officer"] + ["carried into next-year"] * 2
    entries = read_entries(audit_path_for(cfg.ledger_path))
    # The config's first budget, three officer changes, and the refused reopening of a
    # period: logged before it was tried, then logged as failed.
    assert [e.kind for e in entries] == ["budget_change"] * 5 + ["budget_change_failed"]
    assert [e.data["source"] for e in entries[:5]] == ["config"] + ["officer"] * 4
    assert verify_chain(entries, node_identity(cfg.ledger_path).public).ok
    assert _invoke("history", *where)[0] == 0
    assert _invoke("show", *where)[0] == 0
