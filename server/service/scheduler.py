"""Runs queued jobs, a configurable number at a time, and records what they emit.

Workers claim the oldest queued job from the store (atomically, so two workers or two
service processes never run one job twice), hand it to the `JobRunner`, append every
progress event to the store under the next sequence number (what `WatchJob` streams),
and settle the job's state from its final event. A bundle's inline files are not stored
with the events: the runner wrote them to the job's folder, where `FetchResult` reads them.
A job interrupted by a lost link to the federation goes back to the queue under its id
(up to `MAX_ATTEMPTS` runs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path

from server.interruptions import JobInterrupted
from server.run_config import RunMode
from server.service.event_hub import EventHub
from server.service.job_store import JobMode, JobRecord, JobState, JobStore, StateConflict
from server.service.runner import JobRunner, RunRequest
from vocab.errors import SilobridgeError
from vocab.progress import Failed, FinalEvent, JobEnd, ProgressEvent, QuoteResult
from vocab.serde import job_from_bytes

__all__ = ["Scheduler", "event_payload"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Runs of a job whose link to the federation keeps breaking, before it fails."""


def event_payload(event: ProgressEvent) -> str:
    """The JSON the store keeps for an event (`vocab.progress.decode_event` reads it back
    after the event prefix); a bundle's inline files are left out."""
    if isinstance(event, JobEnd):
        event = dataclasses.replace(event, files=None)
    return json.dumps({**event.to_fields(), "event": event.kind}, sort_keys=True, default=str)


class Scheduler:
    """Worker threads between the job store and a runner.

    Args:
        store: The job store.
        runner: Runs one job to its end.
        results: Folder of the jobs' bundles (one subfolder per job id).
        workers: Jobs run at once.
        poll_s: How often an idle worker looks for work without being woken.
        hub: Told of every event and state change (wakes open watch streams).
    """

    def __init__(
        self, store: JobStore, runner: JobRunner, results: Path, *, workers: int = 1,
        poll_s: float = 1.0, hub: EventHub | None = None,
    ) -> None:  # fmt: skip
        self._hub = hub or EventHub()
        self._store = store
        self._runner = runner
        self._results = results
        self._workers = workers
        self._poll_s = poll_s
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers (once)."""
        if self._threads:
            return
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A job was queued: an idle worker looks now."""
        with self._wake:
            self._wake.notify_all()

    def running(self) -> list[str]:
        """The ids of the jobs the workers are running now."""
        with self._lock:
            return sorted(self._running)

    def stop(self, timeout_s: float) -> bool:
        """Claim nothing more and wait up to `timeout_s` for running jobs to end.

        Returns:
            True if every worker finished in time.
        """
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=max(0.0, timeout_s))
        return not any(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._store.claim_next()
            except Exception:  # the store is down for a moment: retry, never die
                log.exception("cannot claim a job from the store")
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(self._poll_s)
                continue
            with self._lock:
                self._running.add(job.job_id)
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running.discard(job.job_id)

    def _emit(self, job_id: str, event: ProgressEvent) -> None:
        self._hub.publish(self._store.append_event(job_id, event.kind, event_payload(event)))

    def _cancelled(self, job_id: str) -> bool:
        try:
            return self._store.get(job_id).cancel_requested
        except SilobridgeError:
            return False

    def _run(self, job: JobRecord) -> None:
        self._hub.started(job.job_id)
        mode = RunMode.QUOTE if job.mode is JobMode.QUOTE else RunMode.RUN
        final: FinalEvent | None = None
        try:
            spec = job_from_bytes(job.spec)
            request = RunRequest(job.job_id, spec, mode, self._results / job.job_id)
            final = self._runner.run(
                request, lambda e: self._emit(job.job_id, e), lambda: self._cancelled(job.job_id)
            )
        except JobInterrupted as err:
            if self._requeue(job, err):
                return
            final = Failed(
                reason=f"the job lost its link to the federation {job.attempts} times: {err}"
            )
            self._emit_final(job.job_id, final)
        except Exception as err:  # the job fails; the worker goes on
            if self._cancelled(job.job_id):
                log.info("job %s stopped: it was cancelled (%s)", job.job_id, err)
            else:
                log.exception("job %s could not run", job.job_id)
            reason = str(err) if isinstance(err, SilobridgeError) else f"bug: {err!r}"
            final = Failed(reason=f"the service could not run the job: {reason}"[:2000])
            self._emit_final(job.job_id, final)
        self._settle(job, final)

    def _emit_final(self, job_id: str, final: Failed) -> None:
        try:
            self._emit(job_id, final)
        except Exception:
            log.exception("cannot record the failure of job %s", job_id)

    def _requeue(self, job: JobRecord, err: JobInterrupted) -> bool:
        """Put an interrupted job back in the queue under its id, up to `MAX_ATTEMPTS`."""
        if job.attempts >= MAX_ATTEMPTS or self._cancelled(job.job_id):
            return False
        log.warning("job %s interrupted (%s): queued again", job.job_id, err)
        try:
            self._store.set_state(job.job_id, JobState.QUEUED, expected=JobState.RUNNING)
        except (StateConflict, SilobridgeError):
            return False
        self.wake()  # its watchers keep waiting: the job is not over
        return True

    def _settle(self, job: JobRecord, final: FinalEvent) -> None:
        state, failure = JobState.FAILED, ""
        if self._cancelled(job.job_id):
            state, failure = JobState.CANCELLED, "cancelled by the analyst"
        elif isinstance(final, JobEnd):
            ok = final.status == "succeeded"
            state, failure = (JobState.SUCCEEDED, "") if ok else (JobState.FAILED, final.failure)
        elif isinstance(final, QuoteResult):
            state = JobState.SUCCEEDED
        elif isinstance(final, Failed):
            failure = final.reason
        try:
            self._store.set_state(job.job_id, state, expected=JobState.RUNNING, failure=failure)
        except StateConflict:
            log.warning("job %s left the running state while it ran", job.job_id)
        self._hub.ended(job.job_id)
