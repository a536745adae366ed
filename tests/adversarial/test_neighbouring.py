"""Attack on the guarantee itself: a held-out split keyed by row position.

DP-SGD's guarantee compares datasets that differ in one row. When the split was keyed by
position, removing one row moved about a third of the training rows across the split, so
"neighbouring" datasets trained on very different rows. The split is now a keyed hash of
the person id, or of the row's own values: removing a row moves no other row.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clients.data.node_dataset import load_job_frames
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.approval import JobClaims

SPEC = synthetic_spec("split")


@pytest.mark.parametrize("person_id", [True, False], ids=["person-id", "row-content"])
def test_removing_one_row_moves_no_other_row_across_the_split(
    tmp_path: Path, person_id: bool
) -> None:
    rows = make_rows(1_000, seed=21)
    rows["x1"] = np.arange(len(rows)) / 1_000  # a unique value to recognise each row by
    cfg = write_node(tmp_path / "tax", "tax", 5.0, rows)
    if not person_id:
        cfg = dataclasses.replace(cfg, person_id=None)

    def sides(frame: pd.DataFrame) -> tuple[set[float], set[float]]:
        cfg.source.path.write_text(frame.to_csv(index=False))  # type: ignore[union-attr]
        train, holdout = load_job_frames(cfg, JobClaims.from_spec(SPEC))
        return set(train["x1"]), set(holdout["x1"])

    train, holdout = sides(rows)
    for removed in (0, 1, 500, 999):
        smaller = rows.drop(index=removed)
        train_minus, holdout_minus = sides(smaller)
        gone = rows.loc[removed, "x1"]
        assert train_minus == train - {gone}
        assert holdout_minus == holdout - {gone}
