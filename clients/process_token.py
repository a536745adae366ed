"""Which process holds a ledger reservation, and whether that process still exists.

A token is the pid plus the process's start time, so a pid reused by an unrelated process
after a crash is not mistaken for the reservation's owner.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["current_token", "token_alive"]


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name, which may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None  # a zombie has finished running; its parent just has not reaped it
    return fields[19]


def current_token() -> str:
    """This process: `pid:starttime` (`pid:` where /proc is unavailable)."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid) or ''}"


def token_alive(token: str) -> bool:
    """Whether the process a token names is still running.

    Unparseable tokens count as alive: a reservation is only ever resumed when its owner is
    known to be gone.
    """
    pid_text, _, start = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if start:
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
