"""The analyst's side of the progress stream: `flwr run --stream` as a stand-in script."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from silobridge.cli.progress_view import ProgressView, print_quote
from silobridge.flower_runner import Federation, submit_job
from testkit.synthetic import synthetic_spec
from tests.unit.vocab.test_progress import EVENTS
from vocab.errors import SilobridgeError
from vocab.progress import (
    EVENT_PREFIX,
    JobEnd,
    NodesConnected,
    ProgressEvent,
    QuoteResult,
    Refusal,
    encode_event,
)

_FAKE_FLWR = """\
import os, sys
sys.stdout.write(open(os.environ["FAKE_FLWR_STREAM"]).read())
"""


@pytest.fixture
def stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lines the stand-in `flwr` prints, in a file the test fills."""
    script = tmp_path / "flwr"
    script.write_text(f"#!{sys.executable}\n{_FAKE_FLWR}")
    script.chmod(0o755)
    monkeypatch.setattr("silobridge.flower_runner.flower_executable", lambda _name: str(script))
    monkeypatch.setattr("silobridge.flower_runner.app_root", lambda: tmp_path)
    lines = tmp_path / "stream.txt"
    monkeypatch.setenv("FAKE_FLWR_STREAM", str(lines))
    return lines


def _submit(tmp_path: Path, seen: list[ProgressEvent]) -> object:
    return submit_job(
        synthetic_spec("stream"), tmp_path / "out", Federation("127.0.0.1:1"),
        tmp_path / "flwr-home", seen.append,
    )  # fmt: skip


def test_events_arrive_typed_and_unreadable_progress_lines_are_skipped(
    stream: Path, tmp_path: Path
) -> None:
    nodes = NodesConnected(connected=2, min_nodes=2)
    refusal = Refusal(department="tax", round=1, code="busy", reason="[/bold] try later")
    end = JobEnd(
        status="succeeded", failure="", result="/elsewhere/result.json",
        files={"result.json": base64.b64encode(b"{}").decode(), "../escape": "AAAA"},
        metrics={}, seconds=1.0,
    )  # fmt: skip
    stream.write_text(
        "\n".join([
            "Successfully started run 42",
            f"INFO :      {encode_event(nodes)}",
            EVENT_PREFIX + json.dumps({"event": "from_the_future", "x": 1}),
            EVENT_PREFIX + json.dumps({"event": "round_start", "round": "one"}),
            encode_event(refusal),
            encode_event(end),
            encode_event(nodes),  # after the last word: not read
        ]) + "\n"
    )  # fmt: skip
    seen: list[ProgressEvent] = []
    assert _submit(tmp_path, seen) == end
    assert seen == [nodes, refusal, end]
    # Only known bundle names are written where the analyst asked.
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".json") == [
        "result.json"
    ]
    assert not (tmp_path / "escape").exists()


def test_a_malformed_last_word_fails_with_what_was_wrong(stream: Path, tmp_path: Path) -> None:
    stream.write_text(EVENT_PREFIX + json.dumps({"event": "job_end", "status": 1}) + "\n")
    with pytest.raises(SilobridgeError, match=r"malformed 'job_end' progress event: status"):
        _submit(tmp_path, [])


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
