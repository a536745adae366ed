"""The CLI turns bad input into a message and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from silobridge.cli.main import app

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result.exit_code, output


def test_node_start_with_missing_config(tmp_path: Path) -> None:
    code, out = _invoke(
        "node", "start", "--config", str(tmp_path / "nope.toml"), "--coordinator", "127.0.0.1:1"
    )
    assert code == 2
    assert "nope.toml" in out and "Traceback" not in out


def test_node_start_with_bad_budget(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        '[node]\ndepartment = "tax"\ndataset = "d"\nledger = "l.sqlite"\n'
        '[data]\nsource = "csv"\npath = "x.csv"\n'
        "[budget]\nepsilon = nan\ndelta = 1e-5\n"
        '[columns]\nx = { type = "float", class = "open" }\n'
    )
    code, out = _invoke("node", "start", "--config", str(cfg), "--coordinator", "127.0.0.1:1")
    assert code == 2
    assert "epsilon" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[job\n", "not valid TOML"), ('[job]\nname = "x"\n', "target")],
)
def test_job_run_with_bad_spec(tmp_path: Path, text: str, needle: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    code, out = _invoke(
        "job", "run", str(spec), "--out", str(tmp_path / "o"), "--home", str(tmp_path / "h")
    )
    assert code == 2
    assert needle in out


def test_job_run_against_no_coordinator_fails_clearly(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    code, out = _invoke(
        "job",
        "run",
        str(root / "examples" / "jobs" / "lending_risk.toml"),
        "--out",
        str(tmp_path / "o"),
        "--coordinator",
        "127.0.0.1:9",
        "--home",
        str(tmp_path / "home"),
    )
    assert code == 2
    assert "Traceback" not in out
    assert "127.0.0.1:9" in out


def test_job_run_without_the_coordinator_home_says_which_option(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[3] / "examples" / "jobs" / "lending_risk.toml"
    code, out = _invoke("job", "run", str(spec), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "--home" in out and "Traceback" not in out


def test_coordinator_start_rejects_partial_tls(tmp_path: Path) -> None:
    code, out = _invoke(
        "coordinator",
        "start",
        "--ssl-certfile",
        str(tmp_path / "c.pem"),
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert code == 2 and "TLS" in out
