"""How the service runs a job: a protocol, so the service does not care who drives Flower.

The service's entry point hands in the runner that submits the service's own released app
bundle to the SuperLink's loopback Control API; tests hand in one that drives the real
ServerApp over an in-process grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from server.run_config import RunMode
from server.schema_round import SchemaAnswer
from vocab.progress import Emit, FinalEvent
from vocab.spec import JobEnvelope

__all__ = ["JobRunner", "RunRequest"]


@dataclass(frozen=True)
class RunRequest:
    """One job to run: its service id (the id the nodes' ledgers key it by), the spec with
    the analyst and project the service charges, the mode and the bundle's folder."""

    job_id: str
    spec: JobEnvelope
    mode: RunMode
    out_dir: Path


class JobRunner(Protocol):
    """Runs a job to its end; returns the final event (`JobEnd`, `Failed` or `QuoteResult`)
    after passing every event, the final one included, to `emit`. The bundle's files go to
    `request.out_dir`. `should_stop` turns True when the job is cancelled; the runner stops
    the run as soon as it can. Raises only for a failure to run at all."""

    def run(
        self, request: RunRequest, emit: Emit, should_stop: Callable[[], bool]
    ) -> FinalEvent: ...

    def describe_columns(self, caller: str, dataset: str) -> list[SchemaAnswer]:
        """Every connected node's declared open and conditional columns (`job schema`).

        Raises:
            JobInterrupted: The federation cannot be reached.
        """
        ...
