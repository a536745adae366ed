"""The regression kind's plan: encoding maps, the Gram release's sensitivity, calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.suffstats import encode_design
from vocab.accounting import epsilon_spent
from vocab.errors import InternalError
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import (
    design_scaling,
    gram_sensitivity,
    gram_size,
    plan_linear,
    plan_poisson,
    row_norm_bound,
)
from vocab.jobspec import FeatureSpec
from vocab.privacy import DpSgdEvent, GaussianEvent


def _spec(**overrides: object) -> RegressionSpec:
    fields: dict[str, object] = {
        "name": "r",
        "target": "y",
        "target_lower": -5.0,
        "target_upper": 15.0,
        "features": (
            FeatureSpec("a", -2.0, 3.0),
            FeatureSpec("b", 0.0, 1000.0, log=True),
            FeatureSpec("c", categories=("p", "q", "r", "s")),
        ),
    }
    fields.update(overrides)
    return RegressionSpec(**fields)  # type: ignore[arg-type]


def _released(frame: pd.DataFrame, spec: RegressionSpec) -> np.ndarray:
    """The exact vector a node noises: upper triangle of the Gram of (x, y), any order."""
    x, y = encode_design(frame, spec)
    z = np.column_stack((x, y))
    gram = z.T @ z
    return gram[np.triu_indices(gram.shape[0])]


def _rows(rng: np.random.Generator, n: int, extreme: bool = False) -> pd.DataFrame:
    if extreme:
        # One row n times, at the bounds (or beyond), every categorical at a non-reference
        # level, |y| at its largest: the person who moves the statistics most.
        return pd.DataFrame(
            {
                "a": [rng.choice([-9.0, 3.0])] * n,
                "b": [rng.choice([0.0, 5e6])] * n,
                "c": [rng.choice(["q", "r", "s"])] * n,
                "y": [rng.choice([-50.0, 15.0])] * n,
            }
        )
    return pd.DataFrame(
        {
            "a": rng.normal(0.5, 4.0, n),
            "b": rng.exponential(300.0, n),
            "c": rng.choice(["p", "q", "r", "s", "other", None], n),
            "y": np.where(rng.random(n) < 0.05, np.nan, rng.normal(5.0, 10.0, n)),
        }
    )


def test_row_norm_bound_and_sizes() -> None:
    spec = _spec()
    assert row_norm_bound(spec) == 4  # intercept, a, b, one categorical block
    assert spec.n_coefficients == 6
    assert gram_size(spec.n_coefficients) == 28
    # sqrt((B + 1)(B + 2) / 2) per row, linear in the rows a person holds.
    assert gram_sensitivity(spec, 1) == pytest.approx(math.sqrt(15.0), rel=1e-15)
    assert gram_sensitivity(spec, 7) == pytest.approx(7 * math.sqrt(15.0), rel=1e-15)
    assert gram_sensitivity(spec, 1) >= math.sqrt(15.0)
    with pytest.raises(InternalError):
        gram_sensitivity(spec, 0)


@pytest.mark.parametrize("contribution", [1, 3])
def test_brute_force_sensitivity_on_neighbouring_datasets(contribution: int) -> None:
    """Adding one person's rows never moves the released vector by more than stated."""
    spec = _spec()
    bound = gram_sensitivity(spec, contribution)
    rng = np.random.default_rng(2024)
    largest = 0.0
    for trial in range(300):
        base = _rows(rng, int(rng.integers(0, 40)))
        person = _rows(rng, contribution, extreme=trial % 3 == 0)
        change = _released(pd.concat([base, person], ignore_index=True), spec) - _released(
            base, spec
        )
        largest = max(largest, float(np.linalg.norm(change)))
        assert np.linalg.norm(change) <= bound * (1 + 1e-12)
    # The bound is tight: a person at the bounds reaches it.
    assert largest == pytest.approx(bound, rel=1e-9)


def test_encoding_stays_within_the_norm_bound() -> None:
    spec = _spec()
    x, y = encode_design(_rows(np.random.default_rng(1), 5000), spec)
    assert np.all(np.abs(x) <= 1.0) and np.all(np.abs(y) <= 1.0)
    assert np.max(np.sum(x * x, axis=1)) <= row_norm_bound(spec)


def test_scaling_maps_bounds_onto_unit_interval_and_back() -> None:
    spec = _spec()
    scaling = design_scaling(spec)
    assert scaling.slopes[0] * -2.0 + scaling.offsets[0] == pytest.approx(-1.0)
    assert scaling.slopes[0] * 3.0 + scaling.offsets[0] == pytest.approx(1.0)
    assert scaling.slopes[1] * math.log1p(1000.0) + scaling.offsets[1] == pytest.approx(1.0)
    assert scaling.slopes[2:] == (1.0, 1.0, 1.0) and scaling.offsets[2:] == (0.0, 0.0, 0.0)
    assert scaling.target_slope * 15.0 + scaling.target_offset == pytest.approx(1.0)
    # OLS on the encoded rows, mapped back, is OLS on the raw rows (inside the bounds).
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "a": rng.uniform(-2, 3, n),
            "b": rng.uniform(0, 1000, n),
            "c": rng.choice(["p", "q", "r", "s"], n),
        }
    )
    raw = np.column_stack(
        [np.ones(n), frame.a, np.log1p(frame.b)]
        + [(frame.c == level).to_numpy(float) for level in ("q", "r", "s")]
    )
    frame["y"] = np.clip(raw @ np.array([1.0, 2.0, 0.5, -1.0, 0.3, 2.0]), -5, 15)
    frame["y"] += rng.uniform(-0.01, 0.01, n)
    x, y = encode_design(frame, spec)
    b = np.linalg.lstsq(x, y, rcond=None)[0]
    matrix, shift = scaling.to_original_units()
    expected = np.linalg.lstsq(raw, np.clip(frame.y, -5, 15), rcond=None)[0]
    np.testing.assert_allclose(matrix @ b + shift, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(("epsilon", "delta"), [(0.1, 1e-6), (1.0, 1e-5), (4.0, 1e-8)])
@pytest.mark.parametrize("contribution", [1, 5])
def test_linear_plan_costs_at_most_epsilon(epsilon: float, delta: float, contribution: int) -> None:
    spec = _spec(epsilon=epsilon, delta=delta)
    plan = plan_linear(spec, contribution)
    assert plan.dims == spec.n_coefficients and plan.size == gram_size(plan.dims)
    assert plan.sensitivity == gram_sensitivity(spec, contribution)
    assert plan.noise_std >= plan.noise_multiplier * plan.sensitivity
    assert plan.events() == [GaussianEvent(plan.noise_multiplier)]
    assert epsilon_spent(plan.events(), delta) <= epsilon
    # And not wastefully: 1 % less noise would overshoot.
    assert epsilon_spent([GaussianEvent(plan.noise_multiplier * 0.99)], delta) > epsilon


def test_known_noise_multiplier() -> None:
    """sigma for one Gaussian release at (1, 1e-5): the classical analytic bound
    sqrt(2 ln(1.25 / delta)) / epsilon (Dwork & Roth 2014, Thm A.1) is ~4.84 and RDP does
    better, about 4.05."""
    plan = plan_linear(_spec(epsilon=1.0, delta=1e-5), 1)
    assert 3.9 < plan.noise_multiplier < math.sqrt(2 * math.log(1.25 / 1e-5))


def test_plans_refuse_the_other_family() -> None:
    with pytest.raises(InternalError):
        plan_linear(_spec(family=Family.POISSON, target_lower=0.0), 1)
    with pytest.raises(InternalError):
        plan_poisson(_spec(), 10_000)


def test_poisson_plan_costs_at_most_epsilon() -> None:
    spec = _spec(family=Family.POISSON, target_lower=0.0, rounds=3, local_epochs=2)
    plan = plan_poisson(spec, 20_000)
    assert plan.sample_rate == pytest.approx(256 / 20_000)
    assert plan.steps_per_round == round(2 / plan.sample_rate)
    assert plan.events() == [DpSgdEvent(plan.noise_multiplier, plan.sample_rate, 156)] * 3
    assert epsilon_spent(plan.events(), spec.delta) <= spec.epsilon
