"""Jobs that did not come through the trusted coordinator: a node whose officer set
[coordinator] public_key answers only jobs that key signed.

The attack: someone who reaches the SuperLink (not the coordinator service) submits a job
naming another analyst or project - to borrow their approvals or walk past their caps -
or replays a signed job with an edited spec. Each is refused with `unclaimed` before the
node reads data or charges anything, and written to the node's audit log. The real path
signs: a job run by the real ServerApp over the in-process grid is answered.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.ledger.node_audit import audit_path_for
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import NodeConfig, load_node_config
from clients.release import JobRequest, handle_quote, handle_request
from testkit.inprocess_federation import Federation
from testkit.synthetic import make_rows, write_node
from vocab.audit_log import read_entries
from vocab.identity_key import IdentityKey
from vocab.job_claim import sign_claim
from vocab.jobs.statistics import parse_statistics_spec
from vocab.progress import JobEnd
from vocab.serde import job_to_bytes
from vocab.wire import STATISTICS, ReplyStatus


def _trusting(cfg: NodeConfig, key: IdentityKey) -> NodeConfig:
    """The node's officer trusts `key` as the coordinator's."""
    pem = cfg.config_path.parent / "coordinator.pub"
    pem.write_bytes(key.public.pem())
    with cfg.config_path.open("a") as fh:
        fh.write('\n[coordinator]\npublic_key = "coordinator.pub"\n')
    return load_node_config(cfg.config_path)


def _spec(analyst: str = "r.ahmed") -> object:
    return parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": "counts", "epsilon": 1.0, "delta": 1e-6,
                    "min_nodes": 1, "analyst": analyst},
            "statistics": [{"measure": "count"}],
        }
    )  # fmt: skip


def _ask(cfg: NodeConfig, spec: object, job_id: str, claim: str, spec_bytes: bytes) -> object:
    request = JobRequest(spec, job_id, 1, [], STATISTICS, spec_bytes=spec_bytes, claim=claim)  # type: ignore[arg-type]
    return handle_request(cfg.config_path, cfg.department, request)


def test_jobs_the_trusted_coordinator_did_not_sign_are_refused(tmp_path: Path) -> None:
    coordinator, intruder = (
        IdentityKey(Ed25519PrivateKey.generate()),
        IdentityKey(Ed25519PrivateKey.generate()),
    )
    cfg = _trusting(write_node(tmp_path / "tax", "tax", 3.0, make_rows(300, seed=1)), coordinator)
    spec = _spec()
    raw = job_to_bytes(spec)  # type: ignore[arg-type]
    edited = job_to_bytes(_spec(analyst="someone.else"))  # type: ignore[arg-type]
    attempts = {
        "no claim": ("", raw),
        "another key": (sign_claim(intruder, "counts-1", raw), raw),
        "another job id": (sign_claim(coordinator, "counts-2", raw), raw),
        "an edited analyst": (sign_claim(coordinator, "counts-1", raw), edited),
    }
    for what, (claim, spec_bytes) in attempts.items():
        outcome = _ask(cfg, spec, "counts-1", claim, spec_bytes)
        assert outcome.report.status is ReplyStatus.REFUSED, what  # type: ignore[attr-defined]
        assert outcome.report.code == "unclaimed", what  # type: ignore[attr-defined]
        assert "trusted coordinator" in outcome.report.reason  # type: ignore[attr-defined]
    quote = handle_quote(cfg.config_path, cfg.department, spec, "counts-1")  # type: ignore[arg-type]
    assert quote.status is ReplyStatus.REFUSED and quote.code == "unclaimed"
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    assert ledger.job_epsilon("counts-1") == 0.0 and ledger.history() == []
    logged = read_entries(audit_path_for(cfg.ledger_path))
    assert [e.data["code"] for e in logged if e.kind == "refusal"] == ["unclaimed"] * 4
    assert [e.data["code"] for e in logged if e.kind == "quote"] == ["unclaimed"]
    signed = _ask(cfg, spec, "counts-1", sign_claim(coordinator, "counts-1", raw), raw)
    assert signed.report.status is ReplyStatus.OK  # type: ignore[attr-defined]


def test_the_real_serverapp_signs_every_message(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    key = federation.home.identity()
    for name, cfg in list(federation.nodes.items()):
        federation.nodes[name] = _trusting(cfg, key)
    spec = parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": "signed", "epsilon": 1.0, "delta": 1e-6,
                    "min_nodes": 2, "node_wait_s": 1.0},
            "statistics": [{"measure": "count"}],
        }
    )  # fmt: skip
    events = federation.submit(spec, 3)
    final = events[-1]
    assert isinstance(final, JobEnd) and final.files is not None, final
    result = json.loads(base64.b64decode(final.files["result.json"]))
    assert result["status"] == "succeeded", result
    assert sorted(result["combined"]) == sorted(federation.nodes)
