"""Output that is not a terminal (a log, a pipe) keeps tables whole instead of cutting them
at rich's default 80 columns."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from silobridge.cli.errors import PIPE_WIDTH, _width


def test_a_pipe_gets_the_wide_console_and_columns_still_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert _width(io.StringIO()) == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert _width(io.StringIO()) is None  # rich reads COLUMNS itself


def test_a_wide_table_reaches_a_pipe_uncut() -> None:
    script = (
        "from rich.table import Table\n"
        "from silobridge.cli.errors import console\n"
        "t = Table()\n"
        "for i in range(12): t.add_column(f'column number {i}')\n"
        "t.add_row(*[f'value-{i}-' + 'x' * 8 for i in range(12)])\n"
        "console.print(t)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "column number 11" in out and "value-11-xxxxxxxx" in out
    assert max(len(line) for line in out.splitlines()) > 80
