"""What every benchmark records next to its figures: date, machine, versions, command; JSON out."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = [
    "command_line",
    "environment",
    "make_console",
    "mean_std",
    "pm",
    "total_ram_gib",
    "write_result",
]

_VERSIONED = ("torch", "opacus", "flwr", "numpy", "pandas")


def command_line(module: str, argv: Sequence[str] | None, via: str | None) -> str:
    """The command a result records: `python -m bench.<module> FLAGS`, or, when another
    module (run_all) called this one, that command with this one in brackets."""
    own = (f"python -m bench.{module} " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    return own if via is None else f"{via} (runs: {own})"


def make_console() -> Console:
    """Rich output as wide as the terminal, or 150 columns into a file or pipe."""
    return Console(width=None if sys.stdout.isatty() else 150)


def total_ram_gib() -> float:
    """Physical memory of the machine in GiB, from sysconf (no psutil), or NaN if unknown."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return math.nan
    return pages * page_size / 2**30


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def environment(command: str) -> dict[str, Any]:
    """Date, machine and software a result was produced on, and the command that produced it.

    The load average is recorded because the machines are shared: a high load explains
    noisy absolute times (ratios measured side by side are what the benchmarks report).
    """
    import torch  # only for the thread count; every benchmark imports it anyway

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {
            "cores": os.cpu_count(),
            "ram_gib": round(total_ram_gib(), 1),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "load_average_1_5_15m": _load_average(),
            "torch_threads": torch.get_num_threads(),
        },
        "python": sys.version.split()[0],
        "versions": {name: _version(name) for name in _VERSIONED},
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for no values."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def pm(values: Sequence[float], digits: int = 3) -> str:
    """`mean ± std` as table text."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_result(out_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write `payload` to `out_dir/<name>.json` (NaN written as null) and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(_finite(payload), indent=2) + "\n", encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so any reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
