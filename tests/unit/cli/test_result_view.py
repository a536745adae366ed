"""The analyst's view of population results: tables, the quote's preview and the charts."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from server.run_config import RunMode
from silobridge.cli.result_view import print_population, print_preview
from silobridge.plots import draw_statistics
from testkit.inprocess_federation import Federation
from vocab.jobs.statistics import parse_statistics_spec
from vocab.progress import JobEnd, QuoteResult

Outcome = tuple[QuoteResult, dict[str, Any]]

# The threshold sits 5 noise stds (about 5.8 on the combined count) above an empty group's
# count, so its cell is suppressed on every draw; the other groups count hundreds of rows.
SPEC = parse_statistics_spec(
    {
        "job": {"kind": "statistics", "name": "view", "epsilon": 2.0, "delta": 1e-6,
                "min_nodes": 2, "node_wait_s": 1.0, "threshold": 30.0},
        "statistics": [
            {"measure": "count"},
            {"measure": "mean", "column": "x1", "lower": -4.0, "upper": 4.0},
            {"measure": "histogram", "column": "x2", "edges": [-4.0, -1.0, 0.0, 1.0, 4.0]},
        ],
        "group_by": {"grp": {"keys": ["a", "b", "c"]}},
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    federation = Federation(tmp_path_factory.mktemp("view"))
    quote = federation.submit(SPEC, 1, RunMode.QUOTE)[-1]
    final = federation.submit(SPEC, 2)[-1]
    monkeypatch.undo()
    assert isinstance(quote, QuoteResult), quote
    assert isinstance(final, JobEnd) and final.files is not None, final
    return quote, json.loads(base64.b64decode(final.files["result.json"]))


def test_the_table_shows_values_and_blanks_suppressed_cells(outcome: Outcome) -> None:
    _, result = outcome
    console = Console(record=True, width=200)
    print_population(console, result)
    text = console.export_text()
    assert "count" in text and "mean(x1)" in text and "histogram(x2)" in text
    # Group "c" has no rows: its noisy count falls below the threshold.
    suppressed = [c for c in result["cells"] if c["group"]["grp"] == "c"]
    assert suppressed and all(c["suppressed"] and c["value"] is None for c in suppressed)
    assert "suppressed" in text


def test_the_quote_previews_half_widths(outcome: Outcome) -> None:
    quote, _ = outcome
    console = Console(record=True, width=200)
    print_preview(console, quote)
    text = console.export_text()
    assert "count" in text and "mean:x1" in text and "scales as 1/rows" in text


def test_charts_are_drawn_for_histograms_and_groups(
    outcome: Outcome,
    tmp_path: Path,
) -> None:
    _, result = outcome
    charts = draw_statistics(result, tmp_path)
    names = {p.name for p in charts}
    assert "histogram_x2.png" in names
    assert any(n.startswith("mean_x1") for n in names)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in charts)
