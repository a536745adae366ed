"""The relay run's manager when there is no SuperLink to start a run on: the job is
interrupted (and so requeued by the service), with the reason, not failed as a bug."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.interruptions import JobInterrupted
from silobridge.flower_federation import Federation
from silobridge.flower_relay import FlowerRelay
from silobridge.processes import free_port


def test_no_superlink_interrupts_the_job_with_the_reason(tmp_path: Path) -> None:
    control = f"127.0.0.1:{free_port()}"  # nothing listens there
    with FlowerRelay(Federation(control), tmp_path / "flwr", attach_timeout_s=5) as relay:
        assert relay.address.startswith("127.0.0.1:")
        with pytest.raises(JobInterrupted, match="no link to the federation") as err:
            relay.grid(lambda: False)
    assert control in str(err.value)
