"""Smoke test of the utility benchmark at `--quick` size: it runs and writes sane JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import utility


def test_quick_utility_writes_expected_rows(tmp_path: Path) -> None:
    assert utility.main(["--quick", "--out", str(tmp_path)]) == 0

    result = json.loads((tmp_path / "utility.json").read_text())
    for key in ("date", "command", "machine", "python", "versions", "settings", "records"):
        assert key in result, key
    assert result["machine"]["cores"] >= 1
    assert {"torch", "opacus"} <= set(result["versions"])
    assert result["settings"]["seeds"] == [0]
    assert result["settings"]["epsilons"] == [1.0]

    rows = {(s["row"], s["variant"]) for s in result["summary"]}
    expected = (
        {
            (kind.value, variant)
            for kind in (
                utility.RowKind.CENTRAL_NO_PRIVACY,
                utility.RowKind.CENTRAL_DP,
                utility.RowKind.LOCAL_BEST,
                utility.RowKind.SILOBRIDGE,
            )
            for variant in (utility.BASELINE, utility.TUNED)
        }
        | {
            (kind.value, variant)
            for kind in (utility.RowKind.NAIVE_REPORTED, utility.RowKind.NAIVE_TRUE)
            for variant in (utility.NAIVE_FLOWER, utility.NAIVE_BASELINE)
        }
        | {(utility.RowKind.SILOBRIDGE.value, utility.SHIPPED)}
    )
    assert rows == expected

    local = [r for r in result["records"] if r["row"] == utility.RowKind.LOCAL_DP.value]
    assert {r["node"] for r in local} == {"northeast", "midwest", "south", "west"}
    for record in result["records"]:
        assert 0.0 <= record["auc"] <= 1.0, record
        assert 0.0 <= record["accuracy"] <= 1.0, record

    hyper = result["naive_pattern"]["hyperparameters"]
    assert all(h["rounds"] > 1 for h in hyper.values())
    for summary in result["summary"]:
        if summary["row"] == utility.RowKind.NAIVE_REPORTED.value:
            # One round costs the nominal epsilon; composing `rounds` of them costs more.
            assert summary["reported_epsilon"] <= 1.0
            assert summary["true_epsilon"] > summary["reported_epsilon"]
        if summary["row"] == utility.RowKind.NAIVE_TRUE.value:
            assert summary["true_epsilon"] <= 1.0
        if summary["row"] == utility.RowKind.SILOBRIDGE.value:
            assert summary["max_node_epsilon"] <= 1.0
