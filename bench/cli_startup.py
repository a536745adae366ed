"""CLI start-up time (issue 11's benchmark): wall time of commands that train nothing, each
a fresh interpreter, and whether torch or Opacus got imported.

Run: ``python -m bench.cli_startup [--quick] [--out results]``

Commands: `silobridge --help`, `silobridge job submit --help` (the analyst's), and the
pricing a `budget show` does (`vocab.accounting.epsilon_spent` of a DP-SGD release: Opacus'
RDP analysis loaded on its own). Median of several runs each, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from bench.report import command_line, environment, make_console, write_result

__all__ = ["main"]

_PROBE = (
    "import json, sys\n"
    "{body}\n"
    "print(json.dumps(sorted(m for m in ('torch', 'opacus') if m in sys.modules)))\n"
)
_COMMANDS = {
    "silobridge --help": (
        "from typer.testing import CliRunner\nfrom silobridge.cli.main import app\n"
        "CliRunner().invoke(app, ['--help'])"
    ),
    "silobridge job submit --help": (
        "from typer.testing import CliRunner\nfrom silobridge.cli.main import app\n"
        "CliRunner().invoke(app, ['job', 'submit', '--help'])"
    ),
    "pricing a DP-SGD release": (
        "from vocab.accounting import epsilon_spent\nfrom vocab.privacy import DpSgdEvent\n"
        "epsilon_spent([DpSgdEvent(1.1, 0.01, 600)], 1e-5)"
    ),
}


def _time(body: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None, via: str | None = None) -> int:
    """Time each command; print and write `cli_startup.json`."""
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two runs per command")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 7
    seconds: dict[str, list[float]] = {name: [] for name in _COMMANDS}
    heavy: dict[str, list[str]] = {}
    for _ in range(repeats):
        for name, body in _COMMANDS.items():
            elapsed, loaded = _time(body)
            seconds[name].append(elapsed)
            heavy[name] = loaded
    console = make_console()
    table = Table(title=f"CLI start-up, fresh interpreter (median of {repeats})")
    for col in ("command", "seconds", "torch / opacus imported"):
        table.add_column(col)
    rows = {}
    for name, values in seconds.items():
        rows[name] = {"median_s": statistics.median(values), "runs_s": values,
                      "heavy_imports": heavy[name]}  # fmt: skip
        table.add_row(name, f"{rows[name]['median_s']:.2f}", ", ".join(heavy[name]) or "no")
    console.print(table)
    payload = {
        **environment(command_line("cli_startup", argv, via)),
        "benchmark": "cli_startup",
        "settings": {"repeats": repeats},
        "commands": rows,
    }
    console.print(f"wrote {write_result(args.out, 'cli_startup', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
