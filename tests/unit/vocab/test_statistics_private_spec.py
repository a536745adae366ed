"""Groupings chosen privately: the spec keys, their refusals, and the wire form."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vocab.errors import InternalError, JobSpecError
from vocab.jobs.statistics import (
    DEFAULT_SELECTION_SHARE,
    MAX_CELLS,
    Grouping,
    NoiseKind,
    parse_statistics_spec,
)
from vocab.jobs.statistics_plan import plan_statistics
from vocab.serde import job_from_bytes, job_to_bytes, spec_fingerprint

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "jobs" / "earnings_by_region.toml"


def _doc(**job: Any) -> dict[str, Any]:
    return {
        "job": {"name": "s", "kind": "statistics", "max_partitions": 50, **job},
        "statistics": [
            {"measure": "count"},
            {"measure": "mean", "column": "x", "lower": 0, "upper": 10},
        ],
        "group_by": {"occupation": {"select": "private"}, "g": {"keys": ["a", "b"]}},
    }


def _with(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


def test_a_private_grouping_parses_with_its_defaults() -> None:
    spec = parse_statistics_spec(_doc())
    assert spec.group_by == (Grouping("occupation", private=True), Grouping("g", keys=("a", "b")))
    assert spec.private and spec.max_partitions == 50 and spec.cells == 50
    assert spec.selection_share == DEFAULT_SELECTION_SHARE
    assert spec.selection_delta == pytest.approx(0.5 * spec.delta)
    assert spec.group_by[0].labels == ()
    assert spec.open_only_columns == ("occupation", "g")
    with pytest.raises(InternalError, match="bug"):
        _ = spec.cell_keys


def test_selection_share_is_read() -> None:
    spec = parse_statistics_spec(_doc(selection_share=0.25, delta=1e-6))
    assert spec.selection_delta == pytest.approx(2.5e-7)


def test_declared_specs_are_untouched() -> None:
    spec = parse_statistics_spec(tomllib.loads(EXAMPLE.read_text()))
    assert not spec.private and spec.max_partitions == 0 and spec.selection_delta == 0.0
    assert spec.cells == 32


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("job", "max_partitions"), None, "max_partitions"),
        (("job", "max_partitions"), 0, "max_partitions"),
        (("job", "max_partitions"), MAX_CELLS + 1, "max_partitions"),
        (("job", "max_partitions"), 2.5, "max_partitions"),
        (("job", "selection_share"), 0.0, "selection_share"),
        (("job", "selection_share"), 1.0, "selection_share"),
        (("job", "selection_share"), "half", "selection_share"),
        (("job", "selection_share"), float("nan"), "selection_share"),
        (("group_by", "occupation", "select"), "public", "select"),
        (("group_by", "occupation", "select"), True, "select"),
        (("group_by", "occupation", "keys"), ["a"], "also `keys`"),
        (("group_by", "occupation", "edges"), [0, 1], "also `keys`"),
        (("job", "max_groups"), 51, "max_groups"),
    ],
)
def test_bad_private_fields_are_refused_naming_them(
    path: tuple[str, ...], value: Any, needle: str
) -> None:
    with pytest.raises(JobSpecError) as info:
        parse_statistics_spec(_with(_doc(), path, value))
    assert needle in str(info.value)
    assert info.value.hint


def test_laplace_noise_is_refused_with_the_fix() -> None:
    with pytest.raises(JobSpecError) as info:
        parse_statistics_spec(_doc(noise="laplace", delta=0.0))
    assert "`occupation`" in info.value.message and "laplace" in info.value.message
    assert 'noise = "gaussian"' in info.value.hint


@pytest.mark.parametrize("key", ["max_partitions", "selection_share"])
def test_selection_keys_without_a_private_grouping_are_refused(key: str) -> None:
    doc = _with(_doc(**{key: 0.5 if key == "selection_share" else 10}), ("group_by",), None)
    with pytest.raises(JobSpecError) as info:
        parse_statistics_spec(doc)
    assert key in info.value.message and 'select = "private"' in info.value.hint


def test_a_private_layout_prices_its_selection() -> None:
    spec = parse_statistics_spec(_doc(max_groups=3))
    plan = plan_statistics(spec, 2)
    assert plan.selection is not None
    assert plan.selection.labels == (None, ("a", "b"))
    assert (plan.selection.max_partitions, plan.selection.max_groups) == (50, 3)
    assert plan.selection.delta == spec.selection_delta
    assert plan.cells == 50


def test_private_specs_round_trip_through_the_wire() -> None:
    spec = parse_statistics_spec(_doc(selection_share=0.3))
    again = job_from_bytes(job_to_bytes(spec))
    assert again == spec
    assert spec_fingerprint(again) == spec_fingerprint(spec)
    changed = dataclasses.replace(spec, selection_share=0.4)
    assert spec_fingerprint(changed) != spec_fingerprint(spec)
    flipped = dataclasses.replace(spec, max_partitions=51)
    assert spec_fingerprint(flipped) != spec_fingerprint(spec)


def test_declared_specs_keep_their_wire_bytes() -> None:
    # The new fields stay at their proto defaults, so a declared spec's bytes - and the
    # fingerprint approvals name - are what they were before private groupings existed
    # (this value was computed by the code without them).
    spec = parse_statistics_spec(tomllib.loads(EXAMPLE.read_text()))
    assert job_from_bytes(job_to_bytes(spec)) == spec
    assert spec_fingerprint(spec) == (
        "171f5473ff8b5c95ef14dac083140428cff838678d04c861dfd39b8980df36b5"
    )


def test_noise_kind_default_is_gaussian_for_private_layouts() -> None:
    spec = parse_statistics_spec(_doc())
    assert spec.noise is NoiseKind.GAUSSIAN
