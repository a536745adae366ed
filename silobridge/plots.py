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
_PANELS = 16


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


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _histograms(
    name: str, column: str, groups: dict[str, list[dict[str, Any]]], out_dir: Path
) -> list[Path]:
    """Small multiples: one panel per group, at most `_PANELS` panels per PNG."""
    import matplotlib.pyplot as plt

    labels = list(groups)
    written = []
    for page, first in enumerate(range(0, len(labels), _PANELS), start=1):
        shown = labels[first : first + _PANELS]
        cols = min(4, len(shown))
        rows = -(-len(shown) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
        for ax, label in zip(axes.flat, shown, strict=False):
            cells = groups[label]
            _bars(ax, [c["level"] for c in cells], cells)
            ax.set_title(label, fontsize=8)
        for ax in list(axes.flat)[len(shown) :]:
            ax.set_visible(False)
        fig.suptitle(f"{name}: histogram of {column} (whiskers: 95 % noise interval)", fontsize=9)
        suffix = f"_{page}" if len(labels) > _PANELS else ""
        written.append(_save(fig, out_dir / f"{_slug(f'histogram_{column}')}{suffix}.png"))
    return written


def draw_statistics(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """A PNG of small multiples per histogram, and one bar chart per grouped statistic;
    returns their paths. Bars show the value, whiskers its 95 % interval from the noise.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    name = result["job"]["name"]
    shown = [c for c in result["cells"] if not c["suppressed"] and c["value"] is not None]
    histograms: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in shown:
        if cell["statistic"] == "histogram":
            histograms[cell["column"]][_label(cell["group"])].append(cell)
        else:
            series[(cell["statistic"], cell["column"], cell["level"])].append(cell)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for column, groups in sorted(histograms.items()):
        written += _histograms(name, column, groups, out_dir)
    for (statistic, column, level), cells in sorted(series.items()):
        cells = cells[:_MAX_BARS]
        title = f"{statistic}{f' q={level}' if level else ''}" + (f" of {column}" if column else "")
        fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(cells) + 2), 3.6))
        _bars(ax, [_label(c["group"]) for c in cells], cells)
        ax.set_title(f"{name}: {title} by group", fontsize=10)
        ax.set_ylabel("value (whiskers: 95 % interval from the DP noise)", fontsize=8)
        stem = _slug("_".join(p for p in (statistic, column, level) if p))
        written.append(_save(fig, out_dir / f"{stem}.png"))
    return written
