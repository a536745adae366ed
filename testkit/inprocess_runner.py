"""A `JobRunner` for the coordinator service's tests: the real ServerApp over an in-process
grid of departments with their real ClientApp functions (`inprocess_federation`)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from server.service.runner import RunRequest
from testkit.inprocess_federation import Federation
from vocab.bundle import files_from_event, write_files
from vocab.progress import Emit, Failed, FinalEvent, JobEnd, ProgressEvent, QuoteResult
from vocab.serde import job_to_bytes

__all__ = ["InProcessRunner"]


class InProcessRunner:
    """Runs each job through `server.server_app.run_submission` on `federation`'s grid.

    `before_event` (tests) sees every event before it is emitted and may raise to
    simulate a coordinator dying mid-job.
    """

    def __init__(
        self, federation: Federation, before_event: Callable[[ProgressEvent], None] | None = None
    ) -> None:
        self.federation = federation
        self.before_event = before_event
        self.runs = 0

    def run(self, request: RunRequest, emit: Emit, should_stop: Callable[[], bool]) -> FinalEvent:
        from server.server_app import run_submission

        self.runs += 1
        final: list[FinalEvent] = []

        def relay(event: ProgressEvent) -> None:
            if self.before_event is not None:
                self.before_event(event)
            emit(event)
            if isinstance(event, JobEnd | Failed | QuoteResult):
                final.append(event)

        config = {
            "job": base64.b64encode(job_to_bytes(request.spec)).decode(),
            "out": str(request.out_dir),
            "mode": request.mode.value,
            "job_id": request.job_id,
        }
        home = self.federation.home.root
        run_submission(self.federation.grid, config, self.runs, str(home), relay)
        if not final:
            return Failed(reason="the run ended without a final event")
        end = final[-1]
        if isinstance(end, JobEnd) and end.files:
            write_files(Path(request.out_dir), files_from_event(end.files))
        return end
