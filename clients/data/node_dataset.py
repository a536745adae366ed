"""Node dataset: a job's checked, person-bounded train/holdout frames from the node's data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from clients.data.data_source import open_source
from clients.data.schema_check import validate_frame
from clients.data.split_key import held_out, node_secret
from clients.node_config import ColumnSpec, NodeConfig
from clients.policy.column_policy import check_job_columns
from vocab.approval import JobClaims
from vocab.errors import InternalError, JobSpecError

__all__ = ["load_job_frames", "read_job_frame", "split_job_frame"]


def _spec(config: NodeConfig, name: str) -> ColumnSpec:
    spec = config.column(name)
    if spec is None:
        raise InternalError(f"column `{name}` passed the policy check but is not declared")
    return spec


def read_job_frame(
    config: NodeConfig, columns: Sequence[str]
) -> tuple[pd.DataFrame, list[object] | None]:
    """Reads the columns a job uses, checked against the node's schema, and the person ids.

    Call only after the column policy let the job through (`check_job_columns`): this
    reads what it is asked.

    Returns:
        The frame of `columns` (coerced to their declared types, 0-based index, no person
        id column; no columns at all, but every row, when `columns` is empty) and each
        row's person id in the same order, or None when the node declares no person id
        (then the unit of privacy is the row).

    Raises:
        DataError: The data cannot be read or does not match the schema.
    """
    wanted = list(dict.fromkeys(columns))
    person_id = config.person_id
    to_read = [*wanted, person_id] if person_id is not None else wanted
    if not to_read:
        # A count of all rows reads no column; one required column gives the rows (its
        # values are dropped unread).
        to_read = [next((c.name for c in config.columns if c.required), config.columns[0].name)]
    source = open_source(config.source)
    raw = source.read(to_read)
    frame = validate_frame(
        raw, [_spec(config, name) for name in to_read], where=source.description
    ).reset_index(drop=True)
    if person_id is None:
        return frame[wanted], None
    keys: list[object] = frame[person_id].tolist()
    return frame[wanted], keys


def split_job_frame(
    config: NodeConfig, frame: pd.DataFrame, person_keys: list[object] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per person, split into train and holdout frames (see `load_job_frames`)."""
    if person_keys is not None:
        first = ~pd.Series(person_keys).duplicated(keep="first").to_numpy()
        frame = frame[first].reset_index(drop=True)
        keys: Sequence[object] = [k for k, keep in zip(person_keys, first, strict=True) if keep]
    else:
        keys = list(frame.itertuples(index=False, name=None))
    secret = node_secret(config.ledger_path)
    side = held_out(keys, secret, config.split_seed, config.holdout_fraction)
    # An empty side is not refused: the refusal would say something about the row count.
    # Training then takes pure-noise steps, and an evaluation counts nothing, noisily.
    return frame[~side].reset_index(drop=True), frame[side].reset_index(drop=True)


def load_job_frames(
    config: NodeConfig, claims: JobClaims, now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loads the columns a job uses and splits the rows into train and holdout frames.

    Steps: the column policy check, signed approvals included (before any data is touched);
    a read of only the used columns plus the person id; the schema check; contribution
    bounding; the split.

    Contribution bounding: when the config names a `person_id` column, only the first row
    of each person (in source order) is kept, so each person contributes at most one row
    and record-level DP on these frames is person-level DP at this node. Without a person
    id, the unit of privacy is the row.

    The split: a row is held out iff `clients.data.split_key.held_out` says so for its key - a
    hash keyed with the node's secret of the person id when set, else of the row's values
    in the job's columns. Removing a row never moves another across the split; within a
    job the same rows are held out every round and after restarts, so held-out rows never
    train. (Without a person id, jobs reading other columns may split differently.)

    Args:
        config: This node's config.
        claims: The job's name, purpose and epsilon, and the columns it reads, in the
            order the frames should have (`JobClaims.from_spec(spec)`).
        now: When to judge approvals' validity; the current time by default.

    Returns:
        (train, holdout), each with the used columns only (the person id is dropped),
        coerced to their declared types, with a fresh 0-based index. The approvals used
        are not returned: a caller that logs them calls `check_job_columns` first.

    Raises:
        JobSpecError: The job uses no columns.
        PolicyRefusal: A column is unknown, restricted, or conditional without a valid
            signed approval for this job.
        ConfigError: The officer key named by the config cannot be read.
        DataError: The data cannot be read or does not match the schema.
    """
    if not claims.columns:
        raise JobSpecError(
            f"job `{claims.name}` uses no columns", "name its columns in the job spec"
        )
    check_job_columns(config, claims, now)
    frame, keys = read_job_frame(config, claims.columns)
    return split_job_frame(config, frame, keys)
