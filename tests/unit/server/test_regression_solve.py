"""The coordinator's linear fit from noisy sufficient statistics: accuracy, coverage, refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.suffstats import (
    encode_design,
    noisy_sufficient_statistics,
    sufficient_statistics,
)
from server.kinds.regression.solve import check_release, solve_linear
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import plan_linear
from vocab.jobs.regression_release import LinearRelease
from vocab.jobspec import FeatureSpec

TRUE = np.array([1.0, 2.0, -0.5, 3.0, -1.0])
"""intercept, a, b, c=q, c=r of the synthetic population."""
NODES = 3
ROWS = 20_000


def _spec(epsilon: float = 1.0, bound: float = 15.0) -> RegressionSpec:
    return RegressionSpec(
        name="r",
        target="y",
        target_lower=-bound,
        target_upper=bound,
        features=(
            FeatureSpec("a", -3.0, 3.0),
            FeatureSpec("b", 0.0, 10.0),
            FeatureSpec("c", categories=("p", "q", "r")),
        ),
        epsilon=epsilon,
    )


def _frame(rng: np.random.Generator, n: int, noise: float = 2.0) -> pd.DataFrame:
    a = rng.uniform(-3, 3, n)
    b = rng.uniform(0, 10, n)
    c = rng.choice(["p", "q", "r"], n)
    y = (
        TRUE[0]
        + TRUE[1] * a
        + TRUE[2] * b
        + np.select([c == "q", c == "r"], [TRUE[3], TRUE[4]], 0.0)
        + rng.normal(0, noise, n)
    )
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


def _raw_ols(frame: pd.DataFrame, spec: RegressionSpec) -> np.ndarray:
    """Non-private OLS in raw units on the same (clamped) rows: the independent oracle."""
    design = np.column_stack(
        [np.ones(len(frame)), frame.a, frame.b, frame.c == "q", frame.c == "r"]
    ).astype(float)
    target = np.clip(frame.y, spec.target_lower, spec.target_upper)
    return np.linalg.lstsq(design, target, rcond=None)[0]


def _simulated_release(
    frame: pd.DataFrame, spec: RegressionSpec, std: float, rng: np.random.Generator
) -> LinearRelease:
    """A node's release with numpy's Gaussian in place of OpenDP's (same law, faster)."""
    x, y = encode_design(frame, spec)
    stats = sufficient_statistics(x, y)
    d = spec.n_coefficients
    size = d * (d + 1) // 2
    vector = np.concatenate((stats["xtx_upper"], stats["xty"], stats["yty"]))
    noisy = vector + rng.normal(0.0, std, vector.shape)
    return LinearRelease(tuple(noisy[:size]), tuple(noisy[size : size + d]), float(noisy[-1]), std)


def test_three_nodes_match_non_private_ols() -> None:
    spec = _spec()
    plan = plan_linear(spec, 1)
    rng = np.random.default_rng(7)
    frames = [_frame(rng, ROWS // NODES) for _ in range(NODES)]
    releases = [noisy_sufficient_statistics(f, spec, plan) for f in frames]
    fit = solve_linear(spec, releases, plan.noise_std)
    ols = _raw_ols(pd.concat(frames), spec)
    assert fit.names == ("intercept", "a", "b", "c=q", "c=r")
    assert fit.ridge == 0.0
    se = np.asarray(fit.std_errors)
    assert np.all(np.abs(np.asarray(fit.coefficients) - ols) < 4 * se)
    # Useful at epsilon = 1: slopes within a few percent of their size.
    assert abs(fit.coefficients[1] - 2.0) < 0.15 and abs(fit.coefficients[2] + 0.5) < 0.08
    assert np.all(np.asarray(fit.lower) < fit.coefficients)
    assert np.all(np.asarray(fit.upper) > fit.coefficients)
    assert fit.n_estimate == pytest.approx(ROWS - ROWS % NODES, abs=200)
    assert fit.rmse == pytest.approx(2.0, rel=0.25)
    assert json.loads(json.dumps(fit.to_json_dict()))["coefficients"][1]["name"] == "a"


@pytest.mark.parametrize(
    ("epsilon", "bound", "residual"),
    [
        (1.0, 15.0, 2.0),  # DP noise dominates
        (1000.0, 30.0, 4.0),  # sampling error alone (bounds wide: no row clamped)
    ],
)
def test_intervals_cover_the_true_coefficients(
    epsilon: float, bound: float, residual: float
) -> None:
    spec = _spec(epsilon, bound)
    std = plan_linear(spec, 1).noise_std
    rng = np.random.default_rng(11)
    runs = 300
    covered = np.zeros(len(TRUE))
    for run in range(runs):
        releases = [
            _simulated_release(_frame(rng, ROWS // NODES, residual), spec, std, rng)
            for _ in range(NODES)
        ]
        fit = solve_linear(spec, releases, seed=run, draws=200)
        covered += (np.asarray(fit.lower) <= TRUE) & (np.asarray(fit.upper) >= TRUE)
    rate = covered / runs
    assert np.all((rate >= 0.90) & (rate <= 0.99)), rate


def test_per_release_noise_stds() -> None:
    spec = _spec()
    rng = np.random.default_rng(3)
    stds = [10.0, 30.0, 10.0]
    releases = [_simulated_release(_frame(rng, 5000), spec, s, rng) for s in stds]
    stated = solve_linear(spec, releases)
    explicit = solve_linear(spec, releases, stds)
    assert stated == explicit
    quieter = solve_linear(spec, releases, 1.0)
    assert all(
        q < s for q, s in zip(quieter.noise_std_errors, stated.noise_std_errors, strict=True)
    )
    assert solve_linear(spec, releases, seed=5) == solve_linear(spec, releases, seed=5)


def test_ill_conditioned_design_gets_a_ridge() -> None:
    """Few rows against much noise: the noisy X'X is lifted and the fit stays finite."""
    spec = _spec(epsilon=0.1)
    rng = np.random.default_rng(5)
    std = plan_linear(spec, 1).noise_std
    releases = [_simulated_release(_frame(rng, 30), spec, std, rng) for _ in range(NODES)]
    fit = solve_linear(spec, releases, draws=50)
    assert fit.ridge > 0
    assert all(math.isfinite(v) for v in (*fit.coefficients, *fit.std_errors, fit.rmse))


def test_constant_feature_does_not_break_the_solve() -> None:
    spec = _spec()
    rng = np.random.default_rng(9)
    frame = _frame(rng, 3000).assign(c="p")  # the categorical block is all zeros
    releases = [_simulated_release(frame, spec, 5.0, rng) for _ in range(NODES)]
    fit = solve_linear(spec, releases, draws=50)
    assert fit.ridge > 0 and all(math.isfinite(v) for v in fit.coefficients)


def _hostile(**change: object) -> LinearRelease:
    honest = {"xtx_upper": [1000.0] + [0.0] * 14, "xty": [0.0] * 5, "yty": 100.0}
    honest.update(change)  # type: ignore[arg-type]
    return LinearRelease(
        tuple(honest["xtx_upper"]),  # type: ignore[arg-type]
        tuple(honest["xty"]),  # type: ignore[arg-type]
        float(honest["yty"]),  # type: ignore[arg-type]
        1.0,
    )


@pytest.mark.parametrize(
    "release",
    [
        _hostile(xty=[0.0, 5000.0, 0.0, 0.0, 0.0]),  # larger than the count allows
        _hostile(xtx_upper=[1000.0, 0.0, 0.0, 0.0, 0.0, -1e9] + [0.0] * 9),
        _hostile(xtx_upper=[-500.0] + [0.0] * 14),  # a negative count
        _hostile(yty=-50.0),  # a negative sum of squares
        _hostile(yty=1e7),
        LinearRelease((1.0, 0.0, 1.0), (0.0, 0.0), 0.0, 1.0),  # another design
    ],
)
def test_hostile_releases_are_refused(release: LinearRelease) -> None:
    spec = _spec()
    rng = np.random.default_rng(1)
    honest = [_simulated_release(_frame(rng, 1000), spec, 1.0, rng) for _ in range(2)]
    with pytest.raises(ValueError, match="release 2"):
        solve_linear(spec, [*honest, release], 1.0)
    with pytest.raises(ValueError):
        check_release(release, spec.n_coefficients, 1.0)


def test_honest_releases_pass_the_check_even_when_small() -> None:
    spec = _spec()
    rng = np.random.default_rng(2)
    for rows in (0, 1, 5, 200):
        release = _simulated_release(_frame(rng, rows), spec, 50.0, rng)
        check_release(release, spec.n_coefficients, 50.0)


def test_bad_calls_are_refused() -> None:
    spec = _spec()
    rng = np.random.default_rng(4)
    releases = [_simulated_release(_frame(rng, 100), spec, 1.0, rng)]
    with pytest.raises(ValueError, match="no releases"):
        solve_linear(spec, [])
    with pytest.raises(ValueError, match="noise stds"):
        solve_linear(spec, releases, [1.0, 2.0])
    with pytest.raises(ValueError, match="noise std"):
        solve_linear(spec, releases, -1.0)
    poisson = RegressionSpec(
        name="p",
        family=Family.POISSON,
        target="y",
        target_lower=0.0,
        target_upper=1.0,
        features=spec.features,
    )
    with pytest.raises(ValueError, match="linear"):
        solve_linear(poisson, releases)
