"""PNG charts of a statistics result: histograms, and statistics by group with 95 % bars.

Drawn on the analyst's host from result.json (post-processing of released figures only).
Suppressed cells are left out of the charts, never drawn as zeros.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["draw_statistics"]

_MAX_BARS = 60


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "chart"


def _label(group: dict[str, str]) -> str:
    return ", ".join(group.values()) or "all"


def _bars(ax: Any, labels: list[str], cells: list[dict[str, Any]]) -> None:
    values = [c["value"] for c in cells]
    low = [c["value"] - c["lower"] for c in cells]
    high = [c["upper"] - c["value"] for c in cells]
    ax.bar(range(len(cells)), values, yerr=[low, high], capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(cells)), labels, rotation=45, ha="right", fontsize=8)


def draw_statistics(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """One PNG per histogram (per group) and per grouped statistic; returns their paths.

    Bars show the value, whiskers its 95 % interval from the noise.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    shown = [c for c in result["cells"] if not c["suppressed"] and c["value"] is not None]
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in shown:
        if cell["statistic"] == "histogram":
            key = ("histogram", cell["column"], _label(cell["group"]))
        else:
            key = (cell["statistic"], cell["column"], cell["level"])
        series[key].append(cell)
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for (statistic, column, part), cells in sorted(series.items()):
        cells = cells[:_MAX_BARS]
        if statistic == "histogram":
            labels = [c["level"] for c in cells]
            title = f"histogram of {column} — {part}"
        else:
            labels = [_label(c["group"]) for c in cells]
            level = f" q={part}" if part else ""
            title = f"{statistic}{level}" + (f" of {column}" if column else "") + " by group"
        fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(cells) + 2), 3.6))
        _bars(ax, labels, cells)
        ax.set_title(f"{result['job']['name']}: {title}", fontsize=10)
        ax.set_ylabel("value (whiskers: 95 % interval from the DP noise)", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{_slug('_'.join(p for p in (statistic, column, part) if p))}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
