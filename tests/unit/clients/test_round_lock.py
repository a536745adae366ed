"""Run slots: at most N job messages at once, a freed slot taken by a waiting message."""

from __future__ import annotations

import threading
from pathlib import Path

from clients.ledger.round_lock import RunSlots


def test_a_message_waits_for_a_slot_and_takes_it_when_freed(tmp_path: Path) -> None:
    slots = RunSlots(tmp_path / "ledger.sqlite", 1)
    held = slots.acquire()
    assert held is not None
    assert slots.acquire(wait_s=0.0) is None  # every slot taken, no wait: none
    threading.Timer(0.3, slots.release, args=(held,)).start()
    waited = slots.acquire(wait_s=5.0)
    assert waited is not None
    slots.release(waited)


def test_two_slots_serve_two_at_once(tmp_path: Path) -> None:
    slots = RunSlots(tmp_path / "ledger.sqlite", 2)
    first, second = slots.acquire(), slots.acquire()
    assert first is not None and second is not None
    assert slots.acquire() is None
    slots.release(first)
    slots.release(second)
