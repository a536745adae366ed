"""The demo job as first shipped, before any tuning: the fixed baseline the benchmarks compare.

`examples/jobs/lending_risk.toml` now carries tuned values (from `bench.utility`), so it
can no longer serve as the "untuned" reference; this copy of its first version can.
"""

from __future__ import annotations

from typing import Any

from vocab.jobspec import RiskJobSpec, parse_job_spec

__all__ = ["BASELINE_DOC", "baseline_spec"]

BASELINE_DOC: dict[str, Any] = {
    "job": {
        "name": "lending-risk",
        "kind": "risk",
        "purpose": "joint credit-default risk model (silobridge demo)",
        "target": "Class",
        "positive": "bad",
        "model": "logistic",
        "rounds": 3,
        "local_epochs": 2,
        "batch_size": 256,
        "learning_rate": 1.0,
        "max_grad_norm": 1.0,
        "epsilon": 1.0,
        "delta": 1e-5,
        "min_nodes": 3,
        "aggregator": "fedavg",
        "server_learning_rate": 1.0,
        "seed": 0,
    },
    "features": {
        "int_rate": {"lower": 5.0, "upper": 30.0},
        "term": {"categories": ["term_36", "term_60"]},
        "annual_inc": {"lower": 0.0, "upper": 1000000.0, "log": True},
        "revol_util": {"lower": 0.0, "upper": 150.0},
        "all_util": {"lower": 0.0, "upper": 200.0},
        "inq_last_6mths": {"lower": 0.0, "upper": 6.0},
        "open_il_24m": {"lower": 0.0, "upper": 30.0},
        "funded_amnt": {"lower": 1000.0, "upper": 40000.0},
        "verification_status": {"categories": ["Not_Verified", "Source_Verified", "Verified"]},
    },
}
"""`examples/jobs/lending_risk.toml` as of commit 89794d6, as a parsed TOML document."""


def baseline_spec() -> RiskJobSpec:
    """The baseline job spec, validated like any other."""
    return parse_job_spec(BASELINE_DOC, source="bench.baseline")
