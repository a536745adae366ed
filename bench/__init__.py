"""Benchmarks (BENCHMARKS.md): each module prints a table and writes results/<name>.json."""

__all__ = ["dp_overhead", "run_all", "utility"]
