"""The coordinator service's `JobRunner`: each job goes to the SuperLink's loopback Control
API as a Flower run of this installation's own released app bundle (`flower_runner`).

Analysts submit specs, never code: the bundle is the service's, the one the departments'
officers approved, whatever checkout the analyst has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from server.service.runner import RunRequest
from silobridge.flower_runner import Federation, app_root, submit_job
from vocab.progress import Emit, FinalEvent

__all__ = ["FlowerJobRunner"]


class FlowerJobRunner:
    """Runs jobs with `flwr run` against `federation` (its Control API on loopback).

    Args:
        federation: Where the SuperLink's Control API listens.
        flwr_home: Flower's CLI state for the service's runs.
        app_dir: The released app to ship (default: this installation).
    """

    def __init__(self, federation: Federation, flwr_home: Path, app_dir: Path | None = None):
        self._federation = federation
        self._flwr_home = flwr_home
        self._app_dir = app_dir or app_root()

    def run(self, request: RunRequest, emit: Emit, should_stop: Callable[[], bool]) -> FinalEvent:
        return submit_job(
            request.spec, request.out_dir, self._federation, self._flwr_home, emit,
            mode=request.mode, app_dir=self._app_dir, job_id=request.job_id,
            should_stop=should_stop,
        )  # fmt: skip
