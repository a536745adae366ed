"""The analyst's view of a job's progress events: lines, and bars on a terminal."""

from __future__ import annotations

import pytest
from rich.console import Console

from silobridge.cli.progress_view import LiveProgress, ProgressView, print_quote
from tests.unit.vocab.test_progress import EVENTS
from vocab.progress import (
    Answers,
    JobEnd,
    JobStart,
    NodePrivacy,
    ProgressEvent,
    QuoteResult,
    Refusal,
    RoundEnd,
    RoundStart,
)

_SILENT = {"job_end", "answers"}  # the summary follows; answers move a bar only


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_every_event_renders(event: ProgressEvent) -> None:
    console = Console(record=True, width=200)
    ProgressView(console)(event)
    if isinstance(event, QuoteResult):
        print_quote(console, event)
    assert console.export_text().strip() or event.kind in _SILENT


def test_coordinator_text_is_shown_as_text_not_markup() -> None:
    console = Console(record=True, width=200)
    ProgressView(console)(Refusal(department="[b]tax", round=1, code="x", reason="[/red] [x]"))
    assert "refused by [b]tax (x): [/red] [x]" in console.export_text()


def _bars(live: LiveProgress) -> dict[str, tuple[float, float | None]]:
    return {t.description: (t.completed, t.total) for t in live.progress.tasks}


def test_a_bar_per_job_and_per_round_follows_the_answers() -> None:
    console = Console(record=True, width=160, force_terminal=True)
    start = JobStart(job="fraud", job_id="j-1", rounds=2, epsilon=1.0, delta=1e-5, min_nodes=2,
                     analyst="a", project="p", out="", job_kind="risk", mode="run")  # fmt: skip
    with LiveProgress(console) as live:
        live(start)
        live(RoundStart(round=1, rounds=2, nodes=3))
        live(Answers(round=1, answered=1, asked=3))
        live(Answers(round=1, answered=2, asked=3))
        assert _bars(live) == {"job fraud": (0, 2), "  round 1/2: answers": (2, 3)}
        live(RoundEnd(round=1, rounds=2, participants=("a", "b"), refused=("c",), metrics={},
                      seconds=1.0, privacy={"a": NodePrivacy(0.5, 0.5, 3.0)}))  # fmt: skip
        live(RoundStart(round=2, rounds=2, nodes=2))
        # One bar for the message out now: round 1's made way for round 2's.
        assert _bars(live) == {"job fraud": (1, 2), "  round 2/2: answers": (0, 2)}
        live(JobEnd(status="succeeded", failure="", result="", files=None, metrics={},
                    seconds=2.0))  # fmt: skip
        assert _bars(live)["job fraud"] == (2, 2)
    # The lines stay on screen; the bars were transient.
    assert "round 1 done" in console.export_text()


def test_off_a_terminal_only_the_lines_are_printed() -> None:
    console = Console(record=True, width=160, force_terminal=False)
    with LiveProgress(console) as live:
        live(RoundStart(round=1, rounds=1, nodes=2))
        live(Answers(round=1, answered=1, asked=2))
    assert not live.progress.live.is_started
    assert console.export_text().strip() == "round 1/1: asking 2 node(s) to train…"
