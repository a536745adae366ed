"""The linear release's wire record: round trip, and refusal of anything malformed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vocab.jobs.regression_release import LinearRelease


def _release() -> LinearRelease:
    return LinearRelease(
        xtx_upper=(100.0, 1.5, -2.0, 40.0, 0.25, 33.0),
        xty=(7.0, -1.0, 2.5),
        yty=30.0,
        noise_std=4.0,
    )


def _doc() -> dict[str, object]:
    return json.loads(_release().to_json())  # type: ignore[no-any-return]


def test_round_trip_and_symmetric_matrix() -> None:
    release = _release()
    assert LinearRelease.from_json(release.to_json(), 3) == release
    assert LinearRelease.from_json(release.to_json().encode(), 3) == release
    np.testing.assert_array_equal(
        release.xtx(), [[100.0, 1.5, -2.0], [1.5, 40.0, 0.25], [-2.0, 0.25, 33.0]]
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(yty=None),
        lambda d: d.update(yty="1"),
        lambda d: d.update(yty=True),
        lambda d: d.update(noise_std=0.0),
        lambda d: d.update(noise_std=-1.0),
        lambda d: d.update(xty=[1.0, 2.0]),
        lambda d: d.update(xty=[1.0, 2.0, 3.0, 4.0]),
        lambda d: d.update(xty={"a": 1}),
        lambda d: d.update(xtx_upper=[1.0] * 5),
        lambda d: d.update(xtx_upper=[1.0] * 5 + [[1.0]]),
        lambda d: d.update(extra=1),
        lambda d: d.pop("xty"),
        lambda d: d.update(yty=10**400),
    ],
)
def test_malformed_fields_are_refused(mutate: object) -> None:
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ValueError):
        LinearRelease.from_json(json.dumps(doc), 3)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "null",
        "{",
        '{"xtx_upper": [NaN, 1, 1, 1, 1, 1], "xty": [1, 1, 1], "yty": 1, "noise_std": 1}',
        '{"xtx_upper": [1, 1, 1, 1, 1, 1], "xty": [1, Infinity, 1], "yty": 1, "noise_std": 1}',
        '{"xtx_upper": [1, 1, 1, 1, 1, 1], "xty": [1, 1, 1], "yty": 1e999, "noise_std": 1}',
        '{"xtx_upper": [1, 1, 1, 1, 1, 1], "xty": [1, 1, 1], "yty": -1e999, "noise_std": 1}',
        " " * 100_000,
        b"\xff\xfe",
    ],
)
def test_hostile_text_is_refused(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        LinearRelease.from_json(text, 3)


def test_wrong_dims_and_bad_arguments() -> None:
    text = _release().to_json()
    with pytest.raises(ValueError):
        LinearRelease.from_json(text, 4)
    with pytest.raises(ValueError):
        LinearRelease.from_json(text, 0)
    with pytest.raises(ValueError):
        LinearRelease.from_json(None, 3)  # type: ignore[arg-type]


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ValueError):
        LinearRelease(xtx_upper=(1.0,), xty=(math.nan,), yty=1.0, noise_std=1.0)
    with pytest.raises(ValueError):
        LinearRelease(xtx_upper=(1.0, 2.0), xty=(1.0,), yty=1.0, noise_std=1.0)
    with pytest.raises(ValueError):
        LinearRelease(xtx_upper=(), xty=(), yty=1.0, noise_std=1.0)


def test_to_json_is_strict_json() -> None:
    text = _release().to_json()
    assert "NaN" not in text and json.loads(text)["noise_std"] == 4.0
