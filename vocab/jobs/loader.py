"""Reads a job spec file of any kind: `[job] kind` picks the kind's parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vocab.errors import JobSpecError
from vocab.jobs.regression import RegressionSpec, parse_regression_spec
from vocab.jobs.statistics import StatisticsSpec, parse_statistics_spec
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.spec import JobEnvelope, read_spec_file

__all__ = ["KINDS", "load_spec", "parse_spec"]

_PARSERS: dict[str, Callable[..., JobEnvelope]] = {
    RiskJobSpec.KIND: parse_job_spec,
    StatisticsSpec.KIND: parse_statistics_spec,
    RegressionSpec.KIND: parse_regression_spec,
}
KINDS = tuple(_PARSERS)
"""The job kinds a spec may name (`[job] kind`; "risk" when it names none)."""


def parse_spec(doc: dict[str, Any], *, source: str = "job spec") -> JobEnvelope:
    """A validated spec of the kind `doc`'s `[job] kind` names.

    Raises:
        JobSpecError: The kind is unknown, or the spec is invalid for its kind.
    """
    job = doc.get("job")
    kind = job.get("kind", RiskJobSpec.KIND) if isinstance(job, dict) else RiskJobSpec.KIND
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise JobSpecError(
            f"{source}: job kind {kind!r} is not one of {', '.join(map(repr, KINDS))}",
            'set `kind` in [job], e.g. kind = "statistics"',
        )
    return parser(doc, source=source)


def load_spec(path: Path) -> JobEnvelope:
    """Read and validate a job spec TOML file of any kind.

    Raises:
        JobSpecError: For an unreadable file, bad TOML or an invalid spec.
    """
    return parse_spec(read_spec_file(path), source=str(path))
