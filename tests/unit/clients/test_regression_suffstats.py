"""The node's linear release: encoding of the design, exact and noisy sufficient statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.suffstats import (
    encode_design,
    noisy_sufficient_statistics,
    sufficient_statistics,
)
from vocab.errors import InternalError
from vocab.jobs.regression import RegressionSpec
from vocab.jobs.regression_plan import LinearPlan, plan_linear
from vocab.jobs.regression_release import LinearRelease
from vocab.jobspec import FeatureSpec


def _spec() -> RegressionSpec:
    return RegressionSpec(
        name="r",
        target="y",
        target_lower=0.0,
        target_upper=10.0,
        features=(
            FeatureSpec("age", 20.0, 60.0),
            FeatureSpec("month", categories=("1", "2", "3")),
        ),
    )


def test_encoding_of_known_rows() -> None:
    frame = pd.DataFrame(
        {
            "age": [20.0, 60.0, 40.0, 90.0, 10.0],
            "month": [1, 2, 3, 3, 2],  # integers compare to the declared levels as text
            "y": [0.0, 10.0, 5.0, 20.0, -3.0],
        }
    )
    x, y = encode_design(frame, _spec())
    assert x.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(
        x,
        [
            [1.0, -1.0, 0.0, 0.0],  # month 1 is the reference: all zeros
            [1.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0, 1.0],  # age clipped to 60
            [1.0, -1.0, 1.0, 0.0],  # age clipped to 20
        ],
    )
    np.testing.assert_array_equal(y, [-1.0, 1.0, 0.0, 1.0, -1.0])


def test_incomplete_rows_are_left_out() -> None:
    frame = pd.DataFrame(
        {
            "age": [30.0, None, 30.0, "old", 30.0, 30.0],
            "month": ["1", "2", "13", "2", None, "3"],
            "y": [1.0, 1.0, 1.0, 1.0, 1.0, None],
        }
    )
    x, y = encode_design(frame, _spec())
    assert x.shape == (1, 4) and y.shape == (1,)


def test_empty_frame() -> None:
    frame = pd.DataFrame({"age": [], "month": [], "y": []})
    x, y = encode_design(frame, _spec())
    assert x.shape == (0, 4) and y.shape == (0,)
    stats = sufficient_statistics(x, y)
    assert not stats["xtx_upper"].any() and not stats["xty"].any() and stats["yty"][0] == 0.0


def test_sufficient_statistics_match_the_products() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (50, 4))
    y = rng.uniform(-1, 1, 50)
    stats = sufficient_statistics(x, y)
    xtx = x.T @ x
    assert stats["xtx_upper"].shape == (10,)
    np.testing.assert_allclose(stats["xtx_upper"], xtx[np.triu_indices(4)])
    np.testing.assert_allclose(stats["xty"], x.T @ y)
    assert stats["yty"][0] == pytest.approx(y @ y)
    with pytest.raises(InternalError):
        sufficient_statistics(x, y[:-1])


def _frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.uniform(20, 60, n),
            "month": rng.choice(["1", "2", "3"], n),
            "y": rng.uniform(0, 10, n),
        }
    )


def test_noisy_release_has_the_plan_noise() -> None:
    spec = _spec()
    frame = _frame(300)
    x, y = encode_design(frame, spec)
    stats = sufficient_statistics(x, y)
    exact = np.concatenate((stats["xtx_upper"], stats["xty"], stats["yty"]))
    plan = LinearPlan(noise_multiplier=2.0, sensitivity=1.5, dims=4)
    errors = []
    for _ in range(60):
        release = noisy_sufficient_statistics(frame, spec, plan)
        assert isinstance(release, LinearRelease) and release.dims == 4
        assert release.noise_std == plan.noise_std
        noisy = np.concatenate((release.xtx_upper, release.xty, [release.yty]))
        errors.append(noisy - exact)
    err = np.asarray(errors).ravel()  # 60 x 15 independent draws
    assert abs(err.mean()) < 4 * 3.0 / math.sqrt(err.size)
    assert err.std() == pytest.approx(3.0, rel=0.1)
    # Fresh noise every time: no two releases alike.
    assert len({e.tobytes() for e in errors}) == len(errors)
    # The noised triangle rebuilds a symmetric X'X.
    matrix = release.xtx()
    np.testing.assert_array_equal(matrix, matrix.T)


def test_release_from_a_real_plan_round_trips_as_json() -> None:
    spec = _spec()
    release = noisy_sufficient_statistics(_frame(100), spec, plan_linear(spec, 1))
    assert LinearRelease.from_json(release.to_json(), spec.n_coefficients) == release


def test_plan_for_another_design_is_a_bug() -> None:
    with pytest.raises(InternalError):
        noisy_sufficient_statistics(_frame(10), _spec(), LinearPlan(1.0, 1.0, 3))
