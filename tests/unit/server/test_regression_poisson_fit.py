"""The poisson regression at the coordinator: raw-unit coefficients and the deviance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_poisson_deviance

from server.kinds.regression.poisson_fit import (
    initial_weights,
    poisson_deviance,
    poisson_fit,
)
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import design_scaling
from vocab.jobspec import FeatureSpec


def _spec() -> RegressionSpec:
    return RegressionSpec(
        name="p",
        family=Family.POISSON,
        target="y",
        target_lower=0.0,
        target_upper=50.0,
        features=(
            FeatureSpec("age", 20.0, 60.0),
            FeatureSpec("income", 0.0, 1e5, log=True),
            FeatureSpec("c", categories=("p", "q", "r")),
        ),
    )


def test_initial_weights_fit_the_design() -> None:
    (weights,) = initial_weights(_spec())
    assert weights.shape == (1, 5) and not weights.any()


def test_raw_coefficients_give_the_same_log_rate() -> None:
    spec = _spec()
    scaling = design_scaling(spec)
    rng = np.random.default_rng(0)
    encoded = rng.normal(0, 0.3, 5)
    fit = poisson_fit(spec, [encoded.astype(np.float32).reshape(1, 5)])
    assert fit.names == ("intercept", "age", "log1p(income)", "c=q", "c=r")
    for _ in range(20):
        age, income, level = rng.uniform(20, 60), rng.uniform(0, 1e5), rng.integers(0, 3)
        raw = np.array([1.0, age, math.log1p(income), level == 1, level == 2], dtype=float)
        x = raw.copy()
        x[1:] = np.asarray(scaling.slopes) * raw[1:] + np.asarray(scaling.offsets)
        assert raw @ np.asarray(fit.coefficients) == pytest.approx(
            x @ encoded.astype(np.float32), rel=1e-5, abs=1e-5
        )
    assert fit.rate_ratios == pytest.approx(tuple(np.exp(fit.coefficients)))
    assert fit.to_json_dict()["coefficients"][0]["name"] == "intercept"


def test_bad_weights_are_refused() -> None:
    spec = _spec()
    with pytest.raises(ValueError):
        poisson_fit(spec, [np.zeros((1, 4), np.float32)])
    with pytest.raises(ValueError):
        poisson_fit(spec, [np.full((1, 5), np.nan, np.float32)])
    with pytest.raises(ValueError):
        poisson_fit(spec, [np.zeros((1, 5), np.float32)] * 2)


def test_deviance_against_an_independent_implementation() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack((np.ones(500), rng.uniform(-1, 1, (500, 2))))
    b = np.array([1.0, 0.4, -0.3])
    offset = rng.normal(0, 0.2, 500)
    y = rng.poisson(np.exp(x @ b + offset)).astype(float)
    mu = np.exp(x @ b + offset)
    expected = mean_poisson_deviance(y, mu) * len(y)
    assert poisson_deviance(b, x, y, offset) == pytest.approx(expected, rel=1e-10)
    # A perfect fit has deviance 0; an overflowing one is infinite, never nan.
    assert poisson_deviance(b, x, mu, offset) == pytest.approx(0.0, abs=1e-9)
    assert poisson_deviance([1e4, 0, 0], x, y) == math.inf
