"""Smoke tests of the accounting and governance benchmarks at `--quick` size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import accounting, governance

ENVIRONMENT_KEYS = ("date", "command", "machine", "python", "versions", "settings")


def _read(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    for key in ENVIRONMENT_KEYS:
        assert key in result, key
    assert result["machine"]["cores"] >= 1
    return result


def test_quick_accounting_is_never_below_dp_accounting(tmp_path: Path) -> None:
    assert accounting.main(["--quick", "--out", str(tmp_path)]) == 0

    result = _read(tmp_path / "accounting.json")
    assert result["settings"]["notes"]
    assert result["summary"]["never_below"] is True
    records = result["records"]
    assert {r["family"] for r in records} == {"dp-sgd job", "cross-job", "statistics", "mix"}
    for record in records:
        for key in ("ours", "rdp", "pld", "pld_lower", "ratio_ours_rdp", "ratio_ours_pld"):
            assert isinstance(record[key], float), (key, record["label"])
        assert record["never_below"] is True, record["label"]
        assert record["ledger_equals_accounting"] is True, record["label"]
        assert record["pld_lower"] <= record["pld"], record["label"]
    for record in records:
        if record["family"] == "cross-job":
            # Composing RDP curves beats adding the jobs' epsilons, never the largest job.
            assert record["between_max_job_and_sum"] is True, record["label"]


def test_quick_governance_times_every_operation(tmp_path: Path) -> None:
    assert governance.main(["--quick", "--out", str(tmp_path)]) == 0

    result = _read(tmp_path / "governance.json")
    levels = result["records"]
    shapes = {shape.value for shape in governance.HistoryShape}
    sizes = set(result["settings"]["ledger_sizes"])
    assert {(lv["shape"], lv["prior_rounds"]) for lv in levels} == {
        (shape, size) for shape in shapes for size in sizes
    }
    for level in levels:
        assert set(level["median_ms"]) == {*governance.OPS, "train_round"}
        assert all(ms > 0 for ms in level["median_ms"].values()), level["median_ms"]
        assert len(level["samples_s"]) == result["settings"]["repetitions"]
        assert level["audit_entries_per_round"] >= 4  # received, reservation, charge, release
        assert 0 < level["governance_ratio"] < 1
        assert 0 < level["non_training_share"] < 1
