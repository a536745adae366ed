"""Names (job, analyst, project) match as a whole: a trailing newline is not a name."""

from __future__ import annotations

import pytest

from vocab.errors import JobSpecError
from vocab.jobspec import NAME_RE, parse_job_spec


def _doc(**job: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "j", "target": "y", "positive": "1"}
    base.update(job)
    return {"job": base, "features": {"x": {"lower": 0.0, "upper": 1.0}}}


@pytest.mark.parametrize("field", ["name", "analyst", "project"])
@pytest.mark.parametrize("value", ["alice\n", "alice\r\n", "\nalice"])
def test_a_name_with_a_newline_is_refused(field: str, value: str) -> None:
    # `^...$` with `.match` accepts "alice\n": `$` also matches before a final newline.
    with pytest.raises(JobSpecError, match=field):
        parse_job_spec(_doc(**{field: value}))


@pytest.mark.parametrize("field", ["name", "analyst", "project"])
def test_a_plain_name_is_accepted(field: str) -> None:
    spec = parse_job_spec(_doc(**{field: "alice.b-2_x"}))
    assert getattr(spec, field) == "alice.b-2_x"


def test_name_pattern_is_used_whole() -> None:
    assert NAME_RE.fullmatch("alice") and not NAME_RE.fullmatch("alice\n")
