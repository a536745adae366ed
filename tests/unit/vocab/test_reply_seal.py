"""A node's seal covers everything its reply says, and only this question's answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto

from vocab.identity_key import IdentityKey, load_or_create_identity
from vocab.reply_seal import seal_reply, seal_verifies

WHERE = {"job_id": "risk#7", "round": 2, "kind": "train", "request": "r" * 64}


@pytest.fixture
def key(tmp_path: Path) -> IdentityKey:
    return load_or_create_identity(tmp_path / "node.key")


def _reply() -> RecordDict:
    return RecordDict(
        {
            "report": ConfigRecord({"department": "tax", "epsilon_job": 0.25, "steps": 12}),
            "holdout": MetricRecord({"pos": [1, 2], "neg": [3, 4], "noise_std": 1.5}),
            "arrays": ArrayRecord([np.arange(6, dtype=np.float32).reshape(2, 3)]),
        }
    )


def _over_the_wire(content: RecordDict) -> RecordDict:
    return recorddict_from_proto(recorddict_to_proto(content))


def test_a_sealed_reply_verifies_after_travelling(key: IdentityKey) -> None:
    sealed = _over_the_wire(seal_reply(_reply(), key, **WHERE))  # type: ignore[arg-type]
    assert seal_verifies(sealed, key.public, **WHERE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "where",
    [
        {**WHERE, "job_id": "risk#8"},
        {**WHERE, "round": 3},
        {**WHERE, "kind": "evaluate"},
        {**WHERE, "request": "s" * 64},  # the same job and round, another question
    ],
)
def test_a_seal_does_not_answer_another_question(
    key: IdentityKey, where: dict[str, object]
) -> None:
    sealed = seal_reply(_reply(), key, **WHERE)  # type: ignore[arg-type]
    assert not seal_verifies(sealed, key.public, **where)  # type: ignore[arg-type]


def test_changing_any_part_breaks_the_seal(key: IdentityKey) -> None:
    for tamper in ("department", "weights", "histogram", "unsealed"):
        sealed = _over_the_wire(seal_reply(_reply(), key, **WHERE))  # type: ignore[arg-type]
        if tamper == "department":
            sealed.config_records["report"]["department"] = "health"
        elif tamper == "weights":
            sealed["arrays"] = ArrayRecord([np.zeros((2, 3), dtype=np.float32)])
        elif tamper == "histogram":
            sealed.metric_records["holdout"]["pos"] = [1, 3]
        else:
            del sealed["seal"]
        assert not seal_verifies(sealed, key.public, **WHERE), tamper  # type: ignore[arg-type]


def test_another_key_does_not_verify(key: IdentityKey, tmp_path: Path) -> None:
    other = load_or_create_identity(tmp_path / "other.key")
    sealed = seal_reply(_reply(), key, **WHERE)  # type: ignore[arg-type]
    assert not seal_verifies(sealed, other.public, **WHERE)  # type: ignore[arg-type]
