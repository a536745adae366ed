"""Attack: read a department's exact row count (and more) out of replies, quotes, refusals.

The sampling rate in every training reply was batch / exact training rows; quotes were
priced from the exact count; schema refusals counted bad values of restricted columns and
named their first bad row; a missing column's refusal listed every column of the source.
Now the node plans from its officer's public size figure, so two departments with
different row counts and the same public figure send identical figures.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from clients.node_config import NodeConfig, render_node_config
from clients.release import handle_quote
from testkit.synthetic import make_rows, synthetic_spec, write_node
from tests.adversarial.conftest import evaluate_as_coordinator, train_as_coordinator
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus

SPEC = synthetic_spec("count", rounds=1, local_epochs=1, epsilon=1.0)
PUBLIC_ROWS = 800  # the officer's published bound: at least every node's rows


def _node(folder: Path, rows: int, seed: int) -> NodeConfig:
    cfg = write_node(folder, folder.name, 10.0, make_rows(rows, seed=seed))
    cfg = dataclasses.replace(cfg, public_rows=PUBLIC_ROWS)
    cfg.config_path.write_text(render_node_config(cfg))
    return cfg


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in record.items()
        if k not in ("department", "audit_seq", "audit_head", "audit_sig")
    }


def test_two_departments_of_different_sizes_send_the_same_figures(tmp_path: Path) -> None:
    small, large = _node(tmp_path / "small", 613, 1), _node(tmp_path / "large", 777, 2)
    quotes = [handle_quote(c.config_path, c.department, SPEC, "count#1") for c in (small, large)]
    assert all(q.status is ReplyStatus.OK for q in quotes), quotes
    assert _public(quotes[0].to_record()) == _public(quotes[1].to_record())

    weights = get_weights(build_model(SPEC))
    trained = [train_as_coordinator(c, SPEC, "count#1", weights) for c in (small, large)]
    assert all(t.report.status is ReplyStatus.OK for t in trained)
    assert _public(trained[0].report.to_record()) == _public(trained[1].report.to_record())
    assert trained[0].report.sample_rate == SPEC.batch_size / round(PUBLIC_ROWS * 0.75)

    evaluated = [evaluate_as_coordinator(c, SPEC, "count#1", weights) for c in (small, large)]
    for outcome, cfg, rows in zip(evaluated, (small, large), (613, 777), strict=True):
        assert outcome.holdout is not None and outcome.holdout.noise_std > 0
        text = repr(outcome.report.to_record())
        # Neither the row count nor the held-out count appears in what leaves the node.
        assert not re.search(rf"\b{rows}\b", text), text
        assert cfg.department in text
    assert _public(evaluated[0].report.to_record()) == _public(evaluated[1].report.to_record())


def test_schema_refusals_of_non_open_columns_carry_no_counts_rows_or_values(
    tmp_path: Path,
) -> None:
    rows = make_rows(300, seed=3)
    rows["pid"] = rows["pid"].astype(object)
    rows.loc[[17, 40, 41], "pid"] = "not-a-number"  # the person id is a restricted column
    cfg = write_node(tmp_path / "tax", "tax", 10.0, rows)
    quote = handle_quote(cfg.config_path, cfg.department, SPEC, "schema#1")
    assert quote.status is ReplyStatus.REFUSED and quote.code == "data_invalid"
    assert "`pid` (restricted)" in quote.reason
    for leak in ("not-a-number", "row 18", "3 value", "data row"):
        assert leak not in quote.reason, quote.reason


def test_a_missing_column_refusal_lists_no_other_column(tmp_path: Path) -> None:
    rows = make_rows(300, seed=4).rename(columns={"x2": "x2_renamed"})
    rows["salary_band"] = np.arange(len(rows))
    cfg = write_node(tmp_path / "tax", "tax", 10.0, rows)
    quote = handle_quote(cfg.config_path, cfg.department, SPEC, "cols#1")
    assert quote.status is ReplyStatus.REFUSED and "`x2`" in quote.reason
    for other in ("salary_band", "x2_renamed", "secret"):
        assert other not in quote.reason, quote.reason
