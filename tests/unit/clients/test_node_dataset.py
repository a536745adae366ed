"""A job's frames: policy first, narrow reads, one row per person, a split that never moves."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.data.csv_source import CsvSource
from clients.data.node_dataset import load_job_frames
from clients.data.split_key import held_out, node_secret
from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
    load_node_config,
    render_node_config,
)
from clients.policy.approval_check import OfficerKey
from vocab.approval import Approval, JobClaims, SignedApproval, serialize_signed_approval
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import DataError, JobSpecError, PolicyRefusal
from vocab.privacy import Budget

COLUMNS = (
    ColumnSpec("pid", ColumnType.STRING, ColumnClass.RESTRICTED),
    ColumnSpec("age", ColumnType.INT, ColumnClass.OPEN),
    ColumnSpec("income", ColumnType.FLOAT, ColumnClass.CONDITIONAL),
    ColumnSpec("default", ColumnType.BOOL, ColumnClass.OPEN),
    ColumnSpec("ssn", ColumnType.STRING, ColumnClass.RESTRICTED, required=False),
)


def _people(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pid": [f"p{i:05d}" for i in range(rows)],
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50_000, 10_000, rows).round(2),
            "default": rng.integers(0, 2, rows).astype(bool),
            "ssn": [f"{i:03d}-00-0000" if i % 2 else None for i in range(rows)],
        }
    )


OFFICER = Ed25519PrivateKey.generate()
PURPOSE = "default risk"
APP = "a" * 64


def _fingerprint(job: str) -> str:
    return hashlib.sha256(job.encode()).hexdigest()


def _claims(
    job: str, used: Sequence[str], epsilon: float = 1.0, purpose: str = PURPOSE
) -> JobClaims:
    return JobClaims(job, purpose, tuple(used), epsilon, "ana", _fingerprint(job), APP)


def _sign_approval(folder: Path, job: str) -> Approval:
    """The officer's signed approval of `income` for `job`, valid around the current time."""
    now = datetime.now(UTC)
    approval = Approval(
        department="northeast",
        dataset="lending",
        job=job,
        purpose=PURPOSE,
        columns=frozenset({"income"}),
        max_epsilon=1.0,
        issued_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=1),
        key_id=OfficerKey.from_public_key(OFFICER.public_key()).key_id,
        analyst="ana",
        spec_fingerprint=_fingerprint(job),
        app_hash=APP,
    )
    signed = SignedApproval(approval, OFFICER.sign(approval.canonical_bytes()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job}.json").write_text(serialize_signed_approval(signed), encoding="utf-8")
    return approval


def _config(
    folder: Path,
    source: DataSourceSpec,
    *,
    person_id: str | None = "pid",
    holdout_fraction: float = 0.2,
    approved_jobs: tuple[str, ...] = ("risk",),
) -> NodeConfig:
    key_path = folder / "officer.pub"
    key_path.write_bytes(
        OFFICER.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for job in approved_jobs:
        _sign_approval(folder / "approvals", job)
    return NodeConfig(
        department="northeast",
        dataset="lending",
        source=source,
        columns=COLUMNS,
        person_id=person_id,
        budget=Budget(3.0, 1e-5),
        ledger_path=folder / "ledger.sqlite",
        holdout_fraction=holdout_fraction,
        split_seed=7,
        config_path=folder / "node.toml",
        officer=OfficerConfig(folder / "approvals", public_key_path=key_path),
    )


def _frames(
    config: NodeConfig, used: Sequence[str], job: str = "risk"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_job_frames(config, _claims(job, used))


def _csv(folder: Path, frame: pd.DataFrame, name: str = "people.csv") -> DataSourceSpec:
    path = folder / name
    frame.to_csv(path, index=False)
    return DataSourceSpec(SourceKind.CSV, path, None, None)


def _parquet(folder: Path, frame: pd.DataFrame) -> DataSourceSpec:
    path = folder / "people.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return DataSourceSpec(SourceKind.PARQUET, path, None, None)


def _sqlite(folder: Path, frame: pd.DataFrame) -> DataSourceSpec:
    path = folder / "people.db"
    with sqlite3.connect(path) as connection:
        frame.to_sql("people", connection, index=False)
    connection.close()
    return DataSourceSpec(SourceKind.SQL, None, f"sqlite:///{path}", "people")


USED = ["age", "income", "default"]
Writer = Callable[[Path, pd.DataFrame], DataSourceSpec]


@pytest.mark.parametrize("write", [_csv, _parquet, _sqlite], ids=["csv", "parquet", "sqlite"])
def test_returns_typed_train_and_holdout_without_the_person_id(
    tmp_path: Path, write: Writer
) -> None:
    people = _people(200)
    config = _config(tmp_path, write(tmp_path, people))

    train, holdout = _frames(config, USED)

    assert list(train.columns) == USED
    assert list(holdout.columns) == USED
    assert len(train) + len(holdout) == 200
    assert {str(t) for t in train.dtypes} == {"int64", "float64", "bool"}
    assert list(train.index) == list(range(len(train)))
    both = pd.concat([train, holdout])
    assert sorted(both["age"]) == sorted(people["age"])


@pytest.mark.parametrize("write", [_csv, _parquet, _sqlite], ids=["csv", "parquet", "sqlite"])
def test_split_is_the_same_for_every_source_kind(tmp_path: Path, write: Writer) -> None:
    people = _people(300)
    reference_dir = tmp_path / "ref"
    reference_dir.mkdir()
    reference = _config(reference_dir, _csv(reference_dir, people))
    expected = _frames(reference, USED)
    # The same node (same ledger, so the same split secret) reading another kind of source.
    config = dataclasses.replace(
        _config(tmp_path, write(tmp_path, people)), ledger_path=reference.ledger_path
    )
    train, holdout = _frames(config, USED)

    pd.testing.assert_frame_equal(train, expected[0])
    pd.testing.assert_frame_equal(holdout, expected[1])


def test_reads_only_the_used_columns_and_the_person_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested: list[list[str]] = []
    original = CsvSource.read

    def spy(self: CsvSource, columns: Sequence[str]) -> pd.DataFrame:
        requested.append(list(columns))
        return original(self, columns)

    monkeypatch.setattr(CsvSource, "read", spy)
    config = _config(tmp_path, _csv(tmp_path, _people(50)))

    _frames(config, ["age", "default"])

    assert requested == [["age", "default", "pid"]]


def test_policy_is_checked_before_any_data_is_read(tmp_path: Path) -> None:
    missing = DataSourceSpec(SourceKind.CSV, tmp_path / "absent.csv", None, None)
    with pytest.raises(PolicyRefusal, match="`ssn`"):
        _frames(_config(tmp_path, missing), ["age", "ssn"])


def test_conditional_column_needs_an_approval_for_this_job(tmp_path: Path) -> None:
    config = _config(tmp_path, _csv(tmp_path, _people(50)))
    with pytest.raises(PolicyRefusal, match="`income`"):
        _frames(config, USED, "another-job")


def test_conditional_column_needs_a_valid_signed_approval_before_any_read(
    tmp_path: Path,
) -> None:
    missing = DataSourceSpec(SourceKind.CSV, tmp_path / "absent.csv", None, None)
    config = _config(tmp_path, missing)
    (config.approvals_dir / "risk.json").write_text(
        (config.approvals_dir / "risk.json").read_text().replace('"income"', '"age"'),
        encoding="utf-8",
    )
    with pytest.raises(PolicyRefusal, match="no valid signed approval"):
        _frames(config, USED)


def test_approval_must_cover_the_job_epsilon_and_purpose(tmp_path: Path) -> None:
    config = _config(tmp_path, _csv(tmp_path, _people(50)))
    assert len(load_job_frames(config, _claims("risk", USED))[0])
    with pytest.raises(PolicyRefusal, match="no valid signed approval"):
        load_job_frames(config, _claims("risk", USED, epsilon=1.5))
    with pytest.raises(PolicyRefusal, match="no valid signed approval"):
        load_job_frames(config, _claims("risk", USED, purpose="marketing"))


def test_a_job_without_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="`risk` uses no columns"):
        _frames(_config(tmp_path, _csv(tmp_path, _people(5))), [])


def test_schema_errors_name_the_source(tmp_path: Path) -> None:
    people = _people(20).astype({"age": object})
    people.loc[4, "age"] = "forty"
    spec = _csv(tmp_path, people)

    with pytest.raises(DataError) as info:
        _frames(_config(tmp_path, spec), USED)

    assert str(spec.path) in info.value.message
    assert "`age`" in info.value.message
    assert "data row 5" in info.value.message


def test_keeps_the_first_row_of_each_person(tmp_path: Path) -> None:
    people = _people(400)
    repeats = people.iloc[:100].assign(age=999)  # later rows of the first 100 persons
    config = _config(tmp_path, _csv(tmp_path, pd.concat([people, repeats])))

    train, holdout = _frames(config, USED)

    assert len(train) + len(holdout) == 400
    assert 999 not in set(train["age"]) | set(holdout["age"])


def test_person_split_does_not_depend_on_row_order(tmp_path: Path) -> None:
    used = ["age", "income"]
    people = _people(500)
    people["age"] = np.arange(500)  # a unique value to recognise each person by
    first = _frames(_config(tmp_path, _csv(tmp_path, people, "a.csv")), used)
    shuffled = people.sample(frac=1.0, random_state=3)
    second = _frames(_config(tmp_path, _csv(tmp_path, shuffled, "b.csv")), used)

    assert set(first[1]["age"]) == set(second[1]["age"])
    assert set(first[0]["age"]) == set(second[0]["age"])


def test_split_is_stable_across_calls_jobs_and_config_reloads(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        _csv(tmp_path, _people(300)),
        approved_jobs=("risk", "other"),
    )
    config_path = tmp_path / "node.toml"
    config_path.write_text(render_node_config(config), encoding="utf-8")

    runs = [
        _frames(config, USED),
        _frames(config, USED),
        _frames(config, USED, "other"),
        _frames(load_node_config(config_path), USED),
    ]

    for train, holdout in runs[1:]:
        pd.testing.assert_frame_equal(train, runs[0][0])
        pd.testing.assert_frame_equal(holdout, runs[0][1])


@pytest.mark.parametrize("person_id", ["pid", None])
def test_holdout_fraction_is_roughly_respected(tmp_path: Path, person_id: str | None) -> None:
    config = _config(
        tmp_path, _csv(tmp_path, _people(2_000)), person_id=person_id, holdout_fraction=0.25
    )

    train, holdout = _frames(config, USED)

    assert len(train) + len(holdout) == 2_000
    # Binomial(2000, 0.25) has sd 19.4 rows; 80 rows is over 4 sd.
    assert abs(len(holdout) - 500) < 80


def test_content_split_keeps_old_rows_in_place_when_rows_are_appended(tmp_path: Path) -> None:
    people = _people(600)
    people["age"] = np.arange(600)
    used = ["age"]
    before = _frames(
        _config(tmp_path, _csv(tmp_path, people.iloc[:400], "a.csv"), person_id=None), used, "r"
    )
    after = _frames(_config(tmp_path, _csv(tmp_path, people, "b.csv"), person_id=None), used, "r")

    assert set(before[1]["age"]) == {a for a in after[1]["age"] if a < 400}


SECRET = b"\x01" * 32


def test_split_hash_is_pinned() -> None:
    # Changing the hash would move held-out rows into training. Expected values come from
    # BLAKE2b keyed with the node secret, salted with the seed, over repr(key).
    keys: list[object] = ["p00000", "p00001", 0, 1, 2, 4]
    assert list(held_out(keys, SECRET, 7, 0.5)) == [False, True, False, False, True, False]
    assert list(held_out(keys, SECRET, 7, 0.1)) == [False, False, False, False, True, False]


def test_split_depends_on_the_node_secret() -> None:
    keys = range(1_000)
    assert list(held_out(keys, SECRET, 1, 0.3)) != list(held_out(keys, b"\x02" * 32, 1, 0.3))


def test_node_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    first = node_secret(ledger)
    assert len(first) == 32 and node_secret(ledger) == first
    assert node_secret(tmp_path / "other" / "ledger.sqlite") != first


def test_split_grows_monotonically_with_the_fraction() -> None:
    keys = list(range(1_000))
    small = {k for k, out in zip(keys, held_out(keys, SECRET, 1, 0.1), strict=True) if out}
    large = {k for k, out in zip(keys, held_out(keys, SECRET, 1, 0.3), strict=True) if out}
    assert small < large


def test_an_empty_side_of_the_split_is_not_refused(tmp_path: Path) -> None:
    # A refusal would tell the coordinator the node holds almost no rows.
    train, holdout = _frames(_config(tmp_path, _csv(tmp_path, _people(1))), USED)
    assert len(train) + len(holdout) == 1
    assert list(train.columns) == list(holdout.columns) == USED
