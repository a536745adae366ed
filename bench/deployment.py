"""Real deployment timing (BENCHMARKS.md §3): round wall time and node memory on loopback.

Starts a real SuperLink and three SuperNodes (generated data, logistic model) and runs the
same job with silobridge's warm ClientApp launches and with a fresh interpreter per message
(`--no-warm`, labelled "subprocess"; both through the app gate), alternating, so the ratio
is measured side by side on the same machine state.
Run: ``python -m bench.deployment [--quick] [--out results]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.live_federation import live_federation
from bench.report import environment, write_result
from silobridge.flower_federation import Federation
from silobridge.flower_runner import submit_job
from silobridge.processes import descendants
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.progress import JobEnd

__all__ = ["main"]

_NODES = 3


def _pss_mib(pids: set[int]) -> float:
    """Proportional set size of these processes (shared pages split fairly), in MiB."""
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total_kib / 1024


class _MemorySampler:
    """Samples the peak PSS of each node's process tree (SuperNode and everything below)."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots
        self.peak: dict[str, float] = dict.fromkeys(roots, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pids in self.roots.items():
                tree = set(pids).union(*(descendants(p) for p in pids))
                self.peak[name] = max(self.peak[name], _pss_mib(tree))
            time.sleep(0.25)

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _one_run(root: Path, warm: bool, rounds: int, rows: int) -> dict[str, Any]:
    nodes = [write_node(root / f"n{i}", f"n{i}", 1000.0, make_rows(rows, i)) for i in range(_NODES)]
    with live_federation(root, nodes, warm=warm) as live:
        spec = synthetic_spec("bench", rounds=rounds, local_epochs=1, min_nodes=_NODES, epsilon=8.0)
        started = time.monotonic()
        with _MemorySampler(live.pids) as memory:
            final = submit_job(spec, root / "out", Federation(live.control),
                               root / "analyst", lambda _event: None,
                               home=live.home)  # fmt: skip
        wall = time.monotonic() - started
    if not isinstance(final, JobEnd):
        raise RuntimeError(f"the benchmark job did not finish: {final}")
    result = json.loads(Path(final.result).read_text())
    round_seconds = [r["seconds"] for r in result["rounds"]]
    return {
        "launcher": "warm" if warm else "subprocess",
        "status": result["status"],
        "round_seconds": round_seconds,
        "median_round_s": statistics.median(round_seconds),
        "job_wall_s": round(wall, 2),
        "peak_node_pss_mib": {k: round(v, 1) for k, v in memory.peak.items()},
    }


def main(argv: Sequence[str] | None = None, via: str = "") -> int:
    """Alternate warm and subprocess runs; print and write `deployment.json`."""
    parser = argparse.ArgumentParser(prog="python -m bench.deployment", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one pair of short runs")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    pairs, rounds, rows = (1, 2, 300) if args.quick else (2, 4, 1000)
    console = Console()
    runs: list[dict[str, Any]] = []
    for i in range(pairs):
        for warm in (True, False):
            with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
                run = _one_run(Path(tmp), warm, rounds, rows)
            console.print(f"pair {i + 1}/{pairs} {run['launcher']}: rounds {run['round_seconds']}")
            runs.append(run)
    summary: dict[str, Any] = {}
    for launcher in ("warm", "subprocess"):
        mine = [r for r in runs if r["launcher"] == launcher]
        rounds_all = [s for r in mine for s in r["round_seconds"]]
        summary[launcher] = {
            "median_round_s": round(statistics.median(rounds_all), 2),
            "median_job_wall_s": round(statistics.median(r["job_wall_s"] for r in mine), 2),
            "max_node_pss_mib": max(max(r["peak_node_pss_mib"].values()) for r in mine),
        }
    ratio = summary["warm"]["median_round_s"] / summary["subprocess"]["median_round_s"]
    table = Table(title=f"real deployment, {_NODES} nodes on loopback, {rounds} rounds")
    for col in ("launcher", "median round (s)", "median job wall (s)", "peak node PSS (MiB)"):
        table.add_column(col)
    for launcher, s in summary.items():
        table.add_row(launcher, f"{s['median_round_s']:.2f}", f"{s['median_job_wall_s']:.1f}",
                      f"{s['max_node_pss_mib']:.0f}")  # fmt: skip
    console.print(table)
    console.print(f"warm / subprocess round time: {ratio:.2f}")
    command = via or "python -m bench.deployment " + " ".join(sys.argv[1:])
    payload = {
        **environment(command),
        "settings": {"nodes": _NODES, "rounds": rounds, "rows_per_node": rows, "pairs": pairs},
        "runs": runs,
        "summary": summary,
        "warm_over_subprocess_round_ratio": round(ratio, 3),
        "note": "round time = ServerApp send -> all replies, incl. ClientApp launch; the "
        "memory figure is the PSS of each node's whole process tree (SuperNode, SuperExec, "
        "fork server, ClientApps) sampled every 0.25 s",
    }
    console.print(f"wrote {write_result(args.out, 'deployment', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
