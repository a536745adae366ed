"""Open watch streams get a job's new events from memory, woken at once, instead of each
polling the store.

The scheduler's workers `publish` every event they append (and the job's end); each open
`WatchJob` stream reads what it has not sent yet from here and `wait`s for more. Only the
jobs this process runs are here, and only while recent (`MAX_JOBS`): a stream on any
other job, or resuming from before what is kept, reads the store, and looks at it again
at least every poll interval (a second service on the same store appends too).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from server.service.job_store import StoredEvent

__all__ = ["MAX_JOBS", "EventHub"]

MAX_JOBS = 64
"""Jobs whose events are kept in memory (the most recently published)."""


class _Job:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.ended = False


class EventHub:
    """Recent jobs' events in memory, and one condition their watchers wait on."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._changed = threading.Condition()

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            job = self._jobs[job_id] = _Job()
            while len(self._jobs) > MAX_JOBS:
                self._jobs.popitem(last=False)
        self._jobs.move_to_end(job_id)
        return job

    def started(self, job_id: str) -> None:
        """A worker claimed the job (again): it has not ended."""
        with self._changed:
            self._job(job_id).ended = False
            self._changed.notify_all()

    def publish(self, event: StoredEvent) -> None:
        """An event was appended to the store."""
        with self._changed:
            job = self._job(event.job_id)
            if not job.events or event.seq == job.events[-1].seq + 1:
                job.events.append(event)
            else:  # a gap (another process appended): let streams read the store
                job.events = [event]
            self._changed.notify_all()

    def ended(self, job_id: str) -> None:
        """The job reached a final state (after its last event was published)."""
        with self._changed:
            self._job(job_id).ended = True
            self._changed.notify_all()

    def after(self, job_id: str, seq: int) -> tuple[list[StoredEvent], bool] | None:
        """The kept events of `job_id` after `seq` and whether the job has ended, or None
        when memory cannot say (the job is not here, or events after `seq` are not all
        kept)."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None or not job.events or job.events[0].seq > seq + 1:
                return None
            return [e for e in job.events if e.seq > seq], job.ended

    def wait(self, timeout_s: float) -> None:
        """Wait until anything is published, or `timeout_s`."""
        with self._changed:
            self._changed.wait(timeout_s)

    def wake_all(self) -> None:
        """Wake every waiting stream (the service is stopping)."""
        with self._changed:
            self._changed.notify_all()
