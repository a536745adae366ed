"""Runs one job from the coordinator host without the service: a relay run of its own
(`silobridge/flower_relay.py`) carrying the job, driven in this process with the
coordinator home (`silobridge job run|quote|query`, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from server.interruptions import JobInterrupted, never_stop
from server.run_config import RunMode
from server.service.grid_runner import GridRunner
from server.service.runner import RunRequest
from silobridge.flower_federation import Federation
from silobridge.flower_relay import FlowerRelay
from vocab.errors import SilobridgeError
from vocab.progress import FinalEvent, ProgressEvent
from vocab.spec import JobEnvelope

__all__ = ["submit_job"]


def submit_job(
    spec: JobEnvelope,
    out_dir: Path,
    federation: Federation,
    flwr_home: Path,
    on_event: Callable[[ProgressEvent], None],
    *,
    home: Path,
    mode: RunMode = RunMode.RUN,
    app_dir: Path | None = None,
    job_id: str = "",
    should_stop: Callable[[], bool] | None = None,
) -> FinalEvent:
    """Run (or, with `mode` QUOTE, only price) `spec` on the federation; blocks until done.

    The job is driven here with the coordinator home `home` (its caps, audit log and key),
    over a Flower run of `app_dir`'s bundle (default: this installation) that only relays.
    `job_id` names the job at the nodes instead of the name and the run id.

    Returns the last event (`job_end` or `failed`; a quote ends in `quote_result` or
    `failed`); the result bundle goes to `out_dir`.

    Raises:
        SilobridgeError: If the run could not be started or its link was lost mid-job.
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with FlowerRelay(federation, flwr_home, app_dir=app_dir) as relay:
        runner = GridRunner(home, relay.grid, relay.app_hash)
        request = RunRequest(job_id, spec, mode, out_dir)
        try:
            return runner.run(request, on_event, should_stop or never_stop)
        except JobInterrupted as err:
            raise SilobridgeError(
                f"the job lost its link to the federation: {err}",
                "is the SuperLink still up? Rerun the job: the nodes answer rounds they "
                "already charged from their ledgers only under the same job id",
            ) from None
