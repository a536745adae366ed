"""Smoke test of the CLI start-up benchmark: it runs, writes sane JSON, and no timed
command imported torch or Opacus."""

from __future__ import annotations

import json
from pathlib import Path

from bench import cli_startup


def test_quick_cli_startup_writes_times_and_no_heavy_import(tmp_path: Path) -> None:
    assert cli_startup.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cli_startup.json").read_text())
    assert result["settings"]["repeats"] == 2
    for name, row in result["commands"].items():
        assert len(row["runs_s"]) == 2 and row["median_s"] > 0, name
        assert row["heavy_imports"] == [], name
