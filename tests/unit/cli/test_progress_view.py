"""The analyst's view of a job's progress events."""

from __future__ import annotations

import pytest
from rich.console import Console

from silobridge.cli.progress_view import ProgressView, print_quote
from tests.unit.vocab.test_progress import EVENTS
from vocab.progress import ProgressEvent, QuoteResult, Refusal


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_every_event_renders(event: ProgressEvent) -> None:
    console = Console(record=True, width=200)
    ProgressView(console)(event)
    if isinstance(event, QuoteResult):
        print_quote(console, event)
    assert console.export_text().strip() or event.kind == "job_end"


def test_coordinator_text_is_shown_as_text_not_markup() -> None:
    console = Console(record=True, width=200)
    ProgressView(console)(Refusal(department="[b]tax", round=1, code="x", reason="[/red] [x]"))
    assert "refused by [b]tax (x): [/red] [x]" in console.export_text()
