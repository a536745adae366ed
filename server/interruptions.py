"""Why a job's driver stops before the job's end without the job having failed."""

from __future__ import annotations

__all__ = ["JobCancelled", "JobInterrupted", "never_stop"]


class JobCancelled(Exception):
    """The analyst cancelled the job: its driver stops at the next call to the grid; what
    the nodes charged so far is settled as for any job that ended early."""


class JobInterrupted(Exception):
    """The link to the federation was lost mid-job (the SuperLink or its run went away).

    Nothing is settled: the job goes back to the queue under the same id, and when it runs
    again the nodes answer the rounds they already charged from their ledgers.
    """


def never_stop() -> bool:
    """The `should_stop` of a job nobody can cancel (tools, tests, schema requests)."""
    return False
