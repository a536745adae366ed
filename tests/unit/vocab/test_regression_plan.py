"""The regression kind's plan: encoding maps, the Gram release's and the poisson
refinement's sensitivity, calibration."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.poisson import encode_poisson, refinement_statistics
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
    plan_refinement,
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
    spec = _spec(
        family=Family.POISSON, target_lower=0.0, rounds=3, local_epochs=2, refine_share=0.0
    )
    plan = plan_poisson(spec, 20_000)
    assert plan.sample_rate == pytest.approx(256 / 20_000)
    assert plan.steps_per_round == round(2 / plan.sample_rate)
    assert plan.events() == [DpSgdEvent(plan.noise_multiplier, plan.sample_rate, 156)] * 3
    assert epsilon_spent(plan.events(), spec.delta) <= spec.epsilon


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("epsilon", [0.3, 1.0, 8.0])
def test_a_refining_poisson_plan_composes_rounds_and_refinement_within_epsilon(
    share: float, epsilon: float
) -> None:
    spec = _spec(
        family=Family.POISSON, target_lower=0.0, rounds=3, epsilon=epsilon, refine_share=share
    )
    plan = plan_poisson(spec, 20_000)
    refine = plan_refinement(spec)
    assert refine is not None and plan.refine == refine
    assert refine.sensitivity == gram_sensitivity(spec, 1)  # one row per person
    assert plan.events()[-1] == GaussianEvent(refine.noise_multiplier)
    assert plan.events()[:-1] == [plan.round_event()] * 3
    assert epsilon_spent(plan.events(), spec.delta) <= epsilon
    # The rounds get what the refinement leaves: more noise than without it.
    alone = plan_poisson(dataclasses.replace(spec, refine_share=0.0), 20_000)
    assert plan.noise_multiplier > alone.noise_multiplier
    # What remains from each round on (what admission prices at that round).
    assert plan.events_from(2) == [plan.round_event()] * 2 + [plan.refine_event()]
    assert plan.events_from(4) == [plan.refine_event()]
    assert plan.events_from(5) == []


def test_a_poisson_plan_without_refinement_has_no_refinement_event() -> None:
    spec = _spec(family=Family.POISSON, target_lower=0.0, refine_share=0.0)
    assert plan_refinement(spec) is None and not spec.refines
    plan = plan_poisson(spec, 20_000)
    assert plan.refine is None and plan.events_from(spec.rounds + 1) == []
    with pytest.raises(InternalError):
        plan.refine_event()
    assert plan_refinement(_spec()) is None  # a linear job never refines


def _refinement_row(spec: RegressionSpec, row: pd.DataFrame, b: np.ndarray) -> np.ndarray:
    x, y, offset = encode_poisson(row, spec)
    return refinement_statistics(x, y, offset, b, spec)


@pytest.mark.parametrize("seed", range(5))
def test_a_refinement_row_moves_the_release_by_at_most_the_sensitivity(seed: int) -> None:
    # Any model the coordinator sends (huge, tiny, random) and any row: the bound holds,
    # and a row at its bounds with mu >= W and y = 0 reaches it.
    rng = np.random.default_rng(seed)
    spec = _spec(family=Family.POISSON, target_lower=0.0, target_upper=40.0)
    bound = gram_sensitivity(spec, 1)
    worst = 0.0
    for scale in (0.0, 1.0, 30.0, 1e4):
        b = rng.normal(0.0, scale, spec.n_coefficients)
        rows = _rows(rng, 300).assign(y=lambda f: rng.choice([0.0, 3.0, 40.0, 1e6], len(f)))
        for i in range(len(rows)):
            part = _refinement_row(spec, rows.iloc[[i]], b)
            worst = max(worst, float(np.linalg.norm(part)))
    assert worst <= bound
    extreme = pd.DataFrame({"a": [3.0], "b": [5e6], "c": ["s"], "y": [0.0]})
    at_bound = np.linalg.norm(_refinement_row(spec, extreme, np.full(spec.n_coefficients, 50.0)))
    assert at_bound == pytest.approx(bound, rel=1e-9)
