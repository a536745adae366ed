"""Smoke tests of issue 11's benchmarks: untuned specs on public tables, and a default
round's cost; each runs on small data and writes sane JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import round_cost, untuned
from bench.public_tables import RECIPES, departments, load_table, untuned_spec


def test_public_tables_split_into_departments_with_the_spec_encoders() -> None:
    recipe = RECIPES["census"]
    spec = untuned_spec(recipe, "logistic", 1.0)
    assert spec.learning_rate is None and spec.batch_size is None
    nodes = departments(load_table(recipe), spec)
    assert len(nodes) == 5
    assert sum(n.n_train + len(n.y_holdout) for n in nodes) == 29_501
    for node in nodes:
        assert node.x_train.shape[1] == spec.n_inputs
        assert 0.2 < float(node.y_train.mean()) < 0.8  # "> 6.6" is about the median


def test_quick_untuned_run_scores_every_row_and_checks_the_goals(tmp_path: Path) -> None:
    assert untuned.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "untuned.json").read_text())
    assert {c["table"] for c in result["cells"]} == {"lending", "hi"}
    for cell in result["cells"]:
        for row in ("untuned", "example_values", "central_dp", "no_privacy"):
            assert all(0.4 < auc <= 1.0 for auc in cell[row]), (cell["table"], row)
    assert len(result["goals"]) == 4
    assert all(isinstance(g["met"], bool) for g in result["goals"])


def test_untuned_flags_narrow_the_run_and_average_the_goal_over_splits(tmp_path: Path) -> None:
    argv = ["--quick", "--tables", "hi", "--models", "logistic", "--splits", "2", "--seeds", "2",
            "--out", str(tmp_path)]  # fmt: skip
    assert untuned.main(argv) == 0
    result = json.loads((tmp_path / "untuned.json").read_text())
    cells = result["cells"]
    assert [(c["table"], c["model"], c["split"]) for c in cells] == [
        ("hi", "logistic", 0), ("hi", "logistic", 1),
    ]  # fmt: skip
    assert all(len(c["untuned"]) == 2 for c in cells)
    # Two splits hold different rows: their holdouts score differently.
    assert cells[0]["no_privacy"] != cells[1]["no_privacy"]
    (goal,) = result["goals"]
    assert len(goal["split_gaps"]) == 2
    assert goal["gap"] == sum(goal["split_gaps"]) / 2


def test_untuned_refuses_a_run_without_seeds(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--seeds must be at least 1"):
        untuned.main(["--quick", "--seeds", "0", "--out", str(tmp_path)])


def test_quick_round_cost_times_both_variants(tmp_path: Path) -> None:
    assert round_cost.main(["--quick", "--out", str(tmp_path)]) == 0
    cases = json.loads((tmp_path / "round_cost.json").read_text())["cases"]
    assert [c["model"] for c in cases] == ["logistic", "mlp"]
    for case in cases:
        assert case["steps"] == 30 and case["plain_round_ms"] > 0 and case["ratio"] > 0
