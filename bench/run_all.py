"""Runs the benchmarks in turn: ``python -m bench.run_all [--quick] [--out results]``
(bench.service, bench.latency, bench.round_time and bench.cli_startup run on their own).

The benchmarks run one after another, never side by side: each one's timings and ratios
assume nothing else of ours competes for the two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    accounting,
    deployment,
    dp_overhead,
    governance,
    population,
    round_cost,
    untuned,
    utility,
)
from bench.report import make_console

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run utility, untuned specs, DP overhead, a default round's cost, accounting,
    governance, population, then the real deployment.

    Every benchmark gets the same `--quick` and `--out`; the first non-zero exit code stops
    the run and is returned.
    """
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    args = parser.parse_args(argv)
    flags = [*(["--quick"] if args.quick else []), "--out", str(args.out)]
    console = make_console()
    started = time.monotonic()
    via = "python -m bench.run_all " + " ".join(sys.argv[1:] if argv is None else argv)
    entries: tuple[tuple[str, Callable[..., int]], ...] = (
        ("utility", utility.main),
        ("untuned", untuned.main),
        ("dp_overhead", dp_overhead.main),
        ("round_cost", round_cost.main),
        ("accounting", accounting.main),
        ("governance", governance.main),
        ("population", population.main),
        ("deployment", deployment.main),
    )
    for name, entry in entries:
        console.rule(f"bench.{name}")
        t0 = time.monotonic()
        code = entry(flags, via=via.strip())
        console.print(f"bench.{name}: {time.monotonic() - t0:.0f} s")
        if code != 0:
            return code
    console.print(f"all benchmarks: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
