"""The `JobRunner` that drives each job in this process (`server.job_driver`) over a Grid:
the relay's in a deployment (`silobridge/flower_relay.py`), an in-process one in tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flwr.serverapp import Grid

from server.home.coordinator_home import CoordinatorHome
from server.interruptions import never_stop
from server.job_driver import run_submission
from server.run_config import encode_run_config
from server.schema_round import SchemaAnswer, ask_schema
from server.service.runner import RunRequest
from vocab.bundle import files_from_event, write_files
from vocab.progress import Emit, Failed, FinalEvent, JobEnd, ProgressEvent, QuoteResult

__all__ = ["QUOTE_FILE", "GridRunner", "GridSource"]

QUOTE_FILE = "quote.json"


GridSource = Callable[[Callable[[], bool]], tuple[Grid, int]]
"""Gives a job its Grid (stopping once the callable turns True) and the Flower run id."""


class GridRunner:
    """Runs jobs with the coordinator home at `home` over the grids `grids` gives; `app_hash`
    names the app bundle their messages run in (recorded in the audit log).

    The job's bundle goes to the coordinator's copy under its home and, from the final
    event, to `request.out_dir` (what `FetchResult` serves); a quote leaves its every
    node's verdict and cost there as `quote.json`.

    Raises (from `run`):
        JobInterrupted: The grid's link was lost mid-job; nothing was settled.
    """

    def __init__(self, home: Path, grids: GridSource, app_hash: Callable[[], str] | None = None):
        self._home = home
        self._grids = grids
        self._app_hash = app_hash

    def describe_columns(self, caller: str, dataset: str) -> list[SchemaAnswer]:
        grid, _ = self._grids(never_stop)
        return ask_schema(grid, CoordinatorHome(self._home.resolve()), caller, dataset)

    def run(self, request: RunRequest, emit: Emit, should_stop: Callable[[], bool]) -> FinalEvent:
        grid, run_id = self._grids(should_stop)
        final: list[FinalEvent] = []

        def relay(event: ProgressEvent) -> None:
            emit(event)
            if isinstance(event, JobEnd | Failed | QuoteResult):
                final.append(event)

        app = self._app_hash() if self._app_hash is not None else ""
        config = encode_run_config(request.spec, request.out_dir, request.mode, request.job_id, app)
        run_submission(grid, config, run_id, str(self._home.resolve()), relay)
        if not final:
            return Failed(reason="the job ended without a final event")
        end = final[-1]
        if isinstance(end, JobEnd) and end.files:
            write_files(Path(request.out_dir), files_from_event(end.files))
        elif isinstance(end, QuoteResult):
            out = Path(request.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / QUOTE_FILE).write_text(json.dumps(end.to_fields(), indent=2, sort_keys=True))
        return end
