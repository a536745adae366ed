"""Attack: use an officer's approval for something it does not approve, or learn what it does.

An approval used to bind a job's name and purpose, not its spec, app or analyst; it could be
reused until it expired; and a refusal quoted the approved name and purpose to whoever
probed, after which any spec under that name was approved. Now an approval names one spec
(its fingerprint), one app bundle and one analyst; the jobs that use it spend at most its
epsilon in total; and a refusal says nothing about any approval the node holds, nor any
node-local path.

The node here is the real job handler on a real node config, ledger and approvals folder;
the app gate's verified hash is set the way the gate sets it (`SILOBRIDGE_APP_HASH`).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import (
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
    render_node_config,
)
from clients.release import JobOutcome, handle_quote
from clients.runtime.app_identity import APP_HASH_ENV
from silobridge.officer_keys import (
    generate_key_pair,
    load_private_key,
    sign_approval,
    write_signed_approval,
)
from testkit.synthetic import COLUMNS as SYNTHETIC_COLUMNS
from testkit.synthetic import make_rows, synthetic_spec
from tests.adversarial.conftest import train_as_coordinator
from vocab.approval import Approval, format_time
from vocab.columns import ColumnClass
from vocab.jobspec import FeatureSpec, ModelKind, RiskJobSpec
from vocab.models import build_model, get_weights
from vocab.privacy import Budget
from vocab.serde import spec_fingerprint
from vocab.wire import NodeQuote, ReplyStatus

APP = "a1" * 32
OTHER_APP = "b2" * 32
# The synthetic schema with `x2` conditional: only an approved job may read it.
COLUMNS = tuple(
    dataclasses.replace(c, column_class=ColumnClass.CONDITIONAL) if c.name == "x2" else c
    for c in SYNTHETIC_COLUMNS
)


def _spec(name: str = "study", **overrides: object) -> RiskJobSpec:
    job = {"rounds": 1, "local_epochs": 1, "evaluation": "off", "analyst": "ana",
           "purpose": "a confidential study of x2", "epsilon": 1.0}  # fmt: skip
    job.update(overrides)
    return synthetic_spec(name, **job)


def _node(folder: Path, rows: int = 300) -> NodeConfig:
    folder.mkdir(parents=True, exist_ok=True)
    make_rows(rows, seed=3).to_csv(folder / "data.csv", index=False)
    generate_key_pair(folder / "officer")
    cfg = NodeConfig(
        department="health",
        dataset="people",
        source=DataSourceSpec(SourceKind.CSV, folder / "data.csv", None, None),
        columns=COLUMNS,
        person_id="pid",
        budget=Budget(10.0, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=0.25,
        split_seed=1,
        config_path=folder / "node.toml",
        public_rows=-(-rows // 100) * 100,
        officer=OfficerConfig(
            folder / "approvals", public_key_path=folder / "officer" / "officer.pub"
        ),
    )
    cfg.config_path.write_text(render_node_config(cfg))
    return cfg


def _approve(
    cfg: NodeConfig, spec: RiskJobSpec, max_epsilon: float, name: str = "study.json"
) -> Approval:
    """The department's officer approves exactly `spec`, run by app `APP`."""
    now = datetime.now(UTC).replace(microsecond=0)
    signed = sign_approval(
        load_private_key(Path(cfg.config_path).parent / "officer" / "officer.key"),
        department=cfg.department,
        dataset=cfg.dataset,
        spec=spec,
        app_hash=APP,
        max_epsilon=max_epsilon,
        issued_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(days=30),
    )
    write_signed_approval(signed, cfg.approvals_dir / name)
    return signed.approval


def _quote(cfg: NodeConfig, spec: RiskJobSpec, job_id: str) -> NodeQuote:
    return handle_quote(Path(cfg.config_path), cfg.department, spec, job_id)


def _weights(spec: RiskJobSpec) -> list[npt.NDArray[np.float32]]:
    return get_weights(build_model(spec))


def _train(cfg: NodeConfig, spec: RiskJobSpec, job_id: str) -> JobOutcome:
    return train_as_coordinator(cfg, spec, job_id, _weights(spec))


def _ledger(cfg: NodeConfig) -> SqliteLedger:
    return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)


@pytest.fixture(autouse=True)
def _gate(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the node's app gate records after verifying the run's bundle.
    monkeypatch.setenv(APP_HASH_ENV, APP)


def _variants(spec: RiskJobSpec) -> dict[str, RiskJobSpec]:
    x1, x2, grp = spec.features
    return {
        "a feature": dataclasses.replace(spec, features=(x2, grp)),
        "a bound": dataclasses.replace(
            spec, features=(dataclasses.replace(x1, upper=5.0), x2, grp)
        ),
        "the model": dataclasses.replace(spec, model=ModelKind.MLP),
        "the rounds": dataclasses.replace(spec, rounds=2),
        "the analyst": dataclasses.replace(spec, analyst="mallory"),
        "the epsilon": dataclasses.replace(spec, epsilon=0.5),
    }


def test_the_approved_spec_is_admitted(tmp_path: Path) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    _approve(cfg, spec, spec.epsilon)
    assert _quote(cfg, spec, "j1").status is ReplyStatus.OK


@pytest.mark.parametrize("change", list(_variants(_spec())))
def test_an_approval_is_refused_for_a_spec_that_differs(tmp_path: Path, change: str) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    _approve(cfg, spec, 10.0)
    probe = _variants(spec)[change]
    assert spec_fingerprint(probe) != spec_fingerprint(spec)

    quote = _quote(cfg, probe, "probe")
    outcome = _train(cfg, probe, "probe")

    assert quote.status is ReplyStatus.REFUSED and quote.code == "policy"
    assert outcome.report.status is ReplyStatus.REFUSED and outcome.report.code == "policy"
    assert "`x2`" in quote.reason
    assert _ledger(cfg).spent() == 0.0


def test_an_approval_is_refused_for_another_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    _approve(cfg, spec, 10.0)
    monkeypatch.setenv(APP_HASH_ENV, OTHER_APP)  # a run of another bundle, e.g. noise removed
    assert _quote(cfg, spec, "j1").code == "policy"
    assert _train(cfg, spec, "j1").report.code == "policy"
    monkeypatch.delenv(APP_HASH_ENV)  # not started through the gate at all
    assert "app gate" in _quote(cfg, spec, "j1").reason
    assert _ledger(cfg).spent() == 0.0


def test_total_epsilon_is_bounded_across_jobs(tmp_path: Path) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    approval = _approve(cfg, spec, spec.epsilon)  # one run's worth

    first = _train(cfg, spec, "run-1")
    assert first.report.status is ReplyStatus.OK, first.report.reason
    ledger = _ledger(cfg)
    spent = ledger.spent()
    assert 0 < ledger.approval_spent(approval.digest()) <= approval.max_epsilon

    # The same approved spec again, as a new job: the approval has no epsilon left.
    assert _quote(cfg, spec, "run-2").code == "policy"
    second = _train(cfg, spec, "run-2")
    assert second.report.status is ReplyStatus.REFUSED and second.report.code == "policy"
    assert "total epsilon" in second.report.reason
    assert ledger.spent() == spent and ledger.job_epsilon("run-2") == 0.0


def test_a_total_for_several_runs_allows_them_and_no_more(tmp_path: Path) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec(epsilon=0.5)
    approval = _approve(cfg, spec, 1.0)  # at least two runs' worth (runs compose sublinearly)

    codes = [_train(cfg, spec, f"run-{i}").report.code for i in range(8)]

    ran = codes.index("policy")
    assert ran >= 2 and set(codes[ran:]) == {"policy"} and set(codes[:ran]) == {""}
    ledger = _ledger(cfg)
    assert ledger.approval_spent(approval.digest()) <= 1.0
    assert all(ledger.job_epsilon(f"run-{i}") == 0.0 for i in range(ran, 8))


def test_resends_do_not_count_twice(tmp_path: Path) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    approval = _approve(cfg, spec, spec.epsilon)
    weights = _weights(spec)

    first = train_as_coordinator(cfg, spec, "run-1", weights)
    ledger = _ledger(cfg)
    used = ledger.approval_spent(approval.digest())
    again = [train_as_coordinator(cfg, spec, "run-1", weights) for _ in range(3)]

    assert first.report.status is ReplyStatus.OK
    assert all(a.report.status is ReplyStatus.OK for a in again)
    assert all(a.report.releases == first.report.releases for a in again)
    assert ledger.approval_spent(approval.digest()) == used
    assert ledger.job_epsilon("run-1") == pytest.approx(used)


def _reply_text(reply: NodeQuote | JobOutcome) -> str:
    report = reply.report if isinstance(reply, JobOutcome) else reply
    return repr(dataclasses.asdict(report))


def test_probing_refusals_reveals_nothing_about_an_approval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _node(tmp_path / "health")
    secret = _spec("secret-merger-study", analyst="insider",
                   purpose="due diligence on the Acme merger")  # fmt: skip
    approval = _approve(cfg, secret, 1.2345, name="acme-merger.json")
    # A prober knows the node's public schema, not the approval, and runs its own app.
    monkeypatch.setenv(APP_HASH_ENV, OTHER_APP)
    probes = [
        _spec("probe"),
        _spec("probe", analyst="insider"),
        _spec("probe", purpose="due diligence"),
        dataclasses.replace(_spec("probe"), features=(FeatureSpec("x2", -4.0, 4.0),)),
        _spec("probe", epsilon=5.0),
    ]
    replies: list[NodeQuote | JobOutcome] = []
    for i, probe in enumerate(probes):
        replies.append(_quote(cfg, probe, f"p{i}"))
        replies.append(_train(cfg, probe, f"p{i}"))
    monkeypatch.setenv(APP_HASH_ENV, APP)
    replies.append(_train(cfg, _spec("probe", analyst="insider"), "p-app"))

    secrets = [
        "secret-merger-study", "due diligence on the Acme merger", "Acme", "1.2345",
        approval.digest(), approval.spec_fingerprint, format_time(approval.expires_at)[:10],
        "acme-merger", str(tmp_path), "node.toml", "data.csv",
    ]  # fmt: skip
    for reply in replies:
        text = _reply_text(reply)
        assert _code(reply) == "policy", text
        for leak in secrets:
            assert leak not in text, (leak, text)
    # What a refusal does say: the job's own fingerprint and app, and whom to ask.
    assert spec_fingerprint(probes[0]) in replies[0].reason  # type: ignore[union-attr]
    assert OTHER_APP in replies[0].reason  # type: ignore[union-attr]
    assert APP not in replies[0].reason  # type: ignore[union-attr]


def test_refusals_about_the_node_itself_name_no_local_path(tmp_path: Path) -> None:
    cfg = _node(tmp_path / "health")
    spec = _spec()
    _approve(cfg, spec, 10.0)
    (tmp_path / "health" / "data.csv").write_text("pid,x1\n1,not-a-number\n")
    corrupt: list[NodeQuote | JobOutcome] = [_quote(cfg, spec, "d1"), _train(cfg, spec, "d1")]
    (tmp_path / "health" / "officer" / "officer.pub").unlink()
    keyless: list[NodeQuote | JobOutcome] = [_quote(cfg, spec, "k1"), _train(cfg, spec, "k1")]

    assert [_code(r) for r in corrupt] == ["data_invalid", "data_invalid"]
    assert [_code(r) for r in keyless] == ["config_invalid", "config_invalid"]
    for reply in corrupt + keyless:
        text = _reply_text(reply)
        assert str(tmp_path) not in text and "data.csv" not in text
        assert "officer.pub" not in text and "not-a-number" not in text
        assert "node's log" in text


def _code(reply: NodeQuote | JobOutcome) -> str:
    return reply.report.code if isinstance(reply, JobOutcome) else reply.code
