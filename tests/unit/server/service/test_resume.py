"""A coordinator service that dies mid-job resumes the job on restart, and no node is charged
twice for a round: the job keeps its id, so each node answers the rounds it already
answered from its ledger (same reply, no charge) and trains only the rounds it did not."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from protos.silobridge.v1 import coordinator_pb2 as pb
from server.interruptions import JobInterrupted
from server.service.scheduler import MAX_ATTEMPTS
from testkit.inprocess_runner import InProcessRunner
from testkit.synthetic import synthetic_spec
from tests.unit.server.service.conftest import ANALYST, Deployment
from tests.unit.server.service.test_api import _job_pb
from vocab.audit_log import read_entries
from vocab.progress import ProgressEvent, RoundEnd


class _Killed(BaseException):
    """The old service's worker dies here (not an Exception: nothing catches it)."""


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_job_killed_mid_run_resumes_and_charges_each_round_once(
    deployment: Deployment,
) -> None:
    after_round_1 = threading.Event()
    release = threading.Event()

    def die_after_round_1(event: ProgressEvent) -> None:
        if isinstance(event, RoundEnd) and event.round == 1:
            after_round_1.set()
            release.wait()  # the process is "dead": nothing more happens in it
            raise _Killed

    deployment.runner.before_event = die_after_round_1
    analyst = deployment.stub("analyst", ANALYST)
    spec = synthetic_spec("resumed", rounds=3, evaluation="off")
    info = analyst.SubmitJob(pb.SubmitJobRequest(spec=_job_pb(spec)), timeout=10)
    assert after_round_1.wait(120), "round 1 never ended"
    round_1_charges = {
        n: deployment.federation.charged(n, info.job_id) for n in deployment.federation.nodes
    }
    assert all(v > 0 for v in round_1_charges.values())

    deployment.service.stop(grace_s=0.5)  # the worker is stuck: the job stays RUNNING
    try:
        fresh = InProcessRunner(deployment.federation)
        deployment.restart(fresh)
        analyst = deployment.stub("analyst", ANALYST)
        _wait_for(
            lambda: (
                analyst.GetJob(pb.JobRef(job_id=info.job_id), timeout=10).state
                in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED)
            )
        )
        job = analyst.GetJob(pb.JobRef(job_id=info.job_id), timeout=10)
        assert job.state == pb.JOB_STATE_SUCCEEDED, job.failure
        assert job.attempts == 2 and fresh.runs == 1
    finally:
        release.set()

    for name, cfg in deployment.federation.nodes.items():
        ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
        rounds = Counter(e.round for e in ledger.history() if e.job_id == info.job_id)
        assert rounds == {1: 1, 2: 1, 3: 1}, (name, rounds)  # one charge per round
        # Round 1 was answered again from the ledger, not trained again.
        audit = read_entries(audit_path_for(cfg.ledger_path))
        resends = [e for e in audit if e.kind == "resend" and e.data.get("job_id") == info.job_id]
        assert [e.data.get("round") for e in resends] == [1], (name, resends)


def _run_to_its_end(deployment: Deployment, name: str, rounds: int) -> tuple[Any, str]:
    """Submit a risk job as the analyst and wait until it ends; the job and its id."""
    analyst = deployment.stub("analyst", ANALYST)
    spec = synthetic_spec(name, rounds=rounds, evaluation="off")
    job_id = analyst.SubmitJob(pb.SubmitJobRequest(spec=_job_pb(spec)), timeout=10).job_id
    ended = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED)
    _wait_for(lambda: analyst.GetJob(pb.JobRef(job_id=job_id), timeout=10).state in ended)
    return analyst.GetJob(pb.JobRef(job_id=job_id), timeout=10), job_id


def test_a_job_whose_link_breaks_is_requeued_and_charges_each_round_once(
    deployment: Deployment,
) -> None:
    """The SuperLink (or the relay run) goes away after round 1: the job goes back to the
    queue under its id, runs again, and the nodes answer round 1 from their ledgers."""
    broke: list[str] = []

    def link_breaks_after_round_1(event: ProgressEvent) -> None:
        if isinstance(event, RoundEnd) and event.round == 1 and not broke:
            broke.append("once")
            raise JobInterrupted("the link to the coordinator's Flower run was lost")

    deployment.runner.before_event = link_breaks_after_round_1
    job, job_id = _run_to_its_end(deployment, "relinked", rounds=2)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.failure
    assert job.attempts == 2 and deployment.runner.runs == 2
    for name, cfg in deployment.federation.nodes.items():
        ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
        rounds = Counter(e.round for e in ledger.history() if e.job_id == job_id)
        assert rounds == {1: 1, 2: 1}, (name, rounds)


def test_a_job_whose_link_keeps_breaking_fails_with_the_reason(deployment: Deployment) -> None:
    def always_breaks(event: ProgressEvent) -> None:
        if isinstance(event, RoundEnd):
            raise JobInterrupted("the SuperLink is gone")

    deployment.runner.before_event = always_breaks
    job, _ = _run_to_its_end(deployment, "unlinked", rounds=1)
    assert job.state == pb.JOB_STATE_FAILED and job.attempts == MAX_ATTEMPTS
    assert "lost its link to the federation 3 times" in job.failure
    assert "the SuperLink is gone" in job.failure
