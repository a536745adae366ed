"""Attack: use `job schema` to learn what a department keeps back. A node answers with the
names, types and classes of its open and conditional columns only - what its officer
published by classifying them - never a restricted column's name, a value or a count; and,
when its officer trusts a coordinator key, only a request that key signed."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.ledger.node_audit import audit_path_for
from clients.node_config import NodeConfig, load_node_config
from clients.schema_answer import handle_schema
from testkit.synthetic import make_rows, write_node
from vocab.audit_log import read_entries
from vocab.identity_key import IdentityKey
from vocab.job_claim import sign_claim
from vocab.wire import ReplyStatus, schema_request_bytes


def _node(tmp_path: Path) -> NodeConfig:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, make_rows(300, seed=1))
    # One column only under approval, to see it listed as such.
    text = cfg.config_path.read_text().replace(
        'x2 = { type = "float", class = "open" }', 'x2 = { type = "float", class = "conditional" }'
    )
    cfg.config_path.write_text(text)
    return load_node_config(cfg.config_path)


def _trusting(cfg: NodeConfig, key: IdentityKey) -> NodeConfig:
    (cfg.config_path.parent / "coordinator.pub").write_bytes(key.public.pem())
    with cfg.config_path.open("a") as fh:
        fh.write('\n[coordinator]\npublic_key = "coordinator.pub"\n')
    return load_node_config(cfg.config_path)


def test_only_published_columns_are_listed_never_a_restricted_one_or_a_value(
    tmp_path: Path,
) -> None:
    cfg = _node(tmp_path)
    restricted = {c.name for c in cfg.columns if c.column_class.value == "restricted"}
    assert restricted == {"pid", "secret"}
    answer = handle_schema(cfg.config_path, "tax", "schema-1", "", None, claim="")
    assert answer.status is ReplyStatus.OK and answer.dataset == cfg.dataset
    assert [(c.name, c.type, c.column_class) for c in answer.columns] == [
        ("x1", "float", "open"), ("x2", "float", "conditional"), ("grp", "string", "open"),
        ("y", "int", "open"),
    ]  # fmt: skip
    # The audit head and signature are a hash and a signature: random-looking text that can
    # hold any short string ("300" in a hex digest); they are checked by the audit tests.
    shown = {k: v for k, v in answer.to_record().items() if k not in {"audit_head", "audit_sig"}}
    record = str(shown)
    assert not any(name in record for name in restricted)
    assert "s1" not in record and "300" not in record  # no value, no count of rows
    logged = [e for e in read_entries(audit_path_for(cfg.ledger_path)) if e.kind == "schema"]
    assert logged and logged[-1].data["columns"] == ["x1", "x2", "grp", "y"]


def test_a_node_that_trusts_a_coordinator_answers_only_its_signed_requests(
    tmp_path: Path,
) -> None:
    coordinator = IdentityKey(Ed25519PrivateKey.generate())
    intruder = IdentityKey(Ed25519PrivateKey.generate())
    cfg = _trusting(_node(tmp_path), coordinator)
    request = schema_request_bytes("")
    for what, claim in {
        "no claim": "",
        "another key": sign_claim(intruder, "schema-1", request),
        "another request id": sign_claim(coordinator, "schema-2", request),
        "another dataset": sign_claim(coordinator, "schema-1", schema_request_bytes("x")),
    }.items():
        answer = handle_schema(cfg.config_path, "tax", "schema-1", "", None, claim=claim)
        assert answer.status is ReplyStatus.REFUSED and answer.code == "unclaimed", what
        assert answer.columns == (), what
    signed = sign_claim(coordinator, "schema-1", request)
    answer = handle_schema(cfg.config_path, "tax", "schema-1", "", None, claim=signed)
    assert answer.status is ReplyStatus.OK and len(answer.columns) == 4


def test_a_request_for_another_dataset_lists_nothing(tmp_path: Path) -> None:
    cfg = _node(tmp_path)
    answer = handle_schema(cfg.config_path, "tax", "schema-1", "census", None, claim="")
    assert answer.status is ReplyStatus.REFUSED and answer.code == "other_dataset"
    assert answer.columns == ()
