"""`silobridge node init` on CSV, Parquet and SQL tables with awkward names and mixed
types: the draft declares every column restricted, with the type the node's own schema
check accepts, reads back as TOML, and never overwrites a file."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from clients.node_config import load_node_config
from silobridge.cli.main import app
from vocab.errors import ConfigError

AWKWARD = ["patient id", "age > 65", "income & benefits", "naïve-score", 'say "hi"', "flag"]


def _frame(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient id": [f"P{i:04d}" for i in range(rows)],
            "age > 65": [i % 2 for i in range(rows)],
            "income & benefits": [1000.5 + i if i % 7 else None for i in range(rows)],
            "naïve-score": [float(i) for i in range(rows)],  # whole numbers: int to the node
            'say "hi"': ["a", "b", "3", "x"] * (rows // 4),  # mixed: text
            "flag": ["yes", "no"] * (rows // 2),
        }
    )


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["node", "init", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


EXPECTED = {
    "patient id": ("string", True),
    "age > 65": ("int", True),
    "income & benefits": ("float", False),
    "naïve-score": ("int", True),
    'say "hi"': ("string", True),
    "flag": ("bool", True),
}


def _check_draft(path: Path) -> dict[str, dict[str, object]]:
    doc = tomllib.loads(path.read_text())
    columns = doc["columns"]
    assert list(columns) == AWKWARD
    for name, (kind, required) in EXPECTED.items():
        assert columns[name]["type"] == kind, name
        assert columns[name]["class"] == "restricted"
        assert columns[name].get("required", True) is required, name
    assert "budget" in doc and not doc["budget"]  # left for the officer
    assert '# person_id = "patient id"' in path.read_text()
    return columns


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_becomes_a_draft_every_column_restricted(tmp_path: Path, fmt: str) -> None:
    data = tmp_path / f"dept.{fmt}"
    if fmt == "csv":
        _frame().to_csv(data, index=False)
    else:
        _frame().to_parquet(data)
    out = tmp_path / "node" / "node.toml"
    code, output = _invoke("--data", str(data), "--department", "health", "--dataset",
                           "admissions", "--out", str(out))  # fmt: skip
    assert code == 0, output
    assert "6 columns" in output and "person-id candidates" in output
    _check_draft(out)
    # The node refuses to start until the officer sets the budget, and says so.
    with pytest.raises(ConfigError, match="budget"):
        load_node_config(out)
    # Once set, the draft is a valid config whose types the node's own check accepts.
    text = (
        out.read_text()
        .replace("# epsilon = 1.0", "epsilon = 1.0")
        .replace("# delta = 1e-5", "delta = 1e-5")
    )
    out.write_text(text)
    config = load_node_config(out)
    assert config.source.path == data.resolve()
    assert {c.name for c in config.columns} == set(AWKWARD)


def test_a_sql_table_becomes_a_draft(tmp_path: Path) -> None:
    db = tmp_path / "dept.db"
    with sqlite3.connect(db) as conn:
        _frame().to_sql("admissions", conn, index=False)
    out = tmp_path / "node.toml"
    code, output = _invoke("--data", f"sqlite:///{db}", "--table", "admissions",
                           "--department", "health", "--dataset", "admissions",
                           "--out", str(out))  # fmt: skip
    assert code == 0, output
    _check_draft(out)
    assert tomllib.loads(out.read_text())["data"]["table"] == "admissions"


def test_bad_input_gets_a_reason_and_nothing_is_overwritten(tmp_path: Path) -> None:
    data = tmp_path / "dept.csv"
    _frame().to_csv(data, index=False)
    existing = tmp_path / "node.toml"
    existing.write_text("# the officer's config\n")
    base = ["--department", "health", "--dataset", "admissions"]
    for args, needle in [
        (["--data", str(data), *base, "--out", str(existing)], "never overwrites"),
        (["--data", str(tmp_path / "dept.xlsx"), *base], "cannot tell the format"),
        (["--data", str(tmp_path / "missing.csv"), *base], "no file at"),
        (["--data", "sqlite:///x.db", *base], "--table"),
        (["--data", str(data), "--department", "Health Dept", "--dataset", "a"], "--department"),
    ]:
        code, output = _invoke(
            *args, *([] if "--out" in args else ["--out", str(tmp_path / "o.toml")])
        )
        assert code == 2 and needle in output, (args, output)
    assert existing.read_text() == "# the officer's config\n"
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n3,4,5\n")  # a row with a field too many
    code, output = _invoke("--data", str(broken), *base, "--out", str(tmp_path / "b.toml"))
    assert code == 2 and not (tmp_path / "b.toml").exists(), output
