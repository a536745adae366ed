"""A `JobRunner` for the coordinator service's tests: the real job driver over an in-process
grid of departments with their real ClientApp functions (`inprocess_federation`)."""

from __future__ import annotations

from collections.abc import Callable

from flwr.serverapp import Grid

from server.schema_round import SchemaAnswer
from server.service.grid_runner import GridRunner
from server.service.runner import RunRequest
from testkit.inprocess_federation import Federation
from vocab.progress import Emit, FinalEvent, ProgressEvent

__all__ = ["InProcessRunner"]


class InProcessRunner:
    """Runs each job through `server.service.grid_runner.GridRunner` on `federation`'s grid.

    `before_event` (tests) sees every event before it is emitted and may raise to
    simulate a coordinator dying mid-job.
    """

    def __init__(
        self, federation: Federation, before_event: Callable[[ProgressEvent], None] | None = None
    ) -> None:
        self.federation = federation
        self.before_event = before_event
        self.runs = 0

    def _grid(self, should_stop: Callable[[], bool]) -> tuple[Grid, int]:
        del should_stop  # the in-process grid answers at once; a cancel is seen at the end
        self.runs += 1
        return self.federation.grid, self.runs

    def describe_columns(self, caller: str, dataset: str) -> list[SchemaAnswer]:
        return GridRunner(self.federation.home.root, self._grid).describe_columns(caller, dataset)

    def run(self, request: RunRequest, emit: Emit, should_stop: Callable[[], bool]) -> FinalEvent:
        def relay(event: ProgressEvent) -> None:
            if self.before_event is not None:
                self.before_event(event)
            emit(event)

        runner = GridRunner(self.federation.home.root, self._grid)
        return runner.run(request, relay, should_stop)
