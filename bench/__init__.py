"""Benchmarks (BENCHMARKS.md): each module prints a table and writes results/<name>.json."""

__all__ = [
    "accounting",
    "baseline",
    "departments",
    "deployment",
    "dp_oracle",
    "dp_overhead",
    "feature_sets",
    "governance",
    "report",
    "run_all",
    "sweep",
    "training",
    "utility",
]
