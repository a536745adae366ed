"""The poisson refinement at the coordinator: one Newton step from the DP-SGD model on the
nodes' noisy score and information, its standard errors, and when it declines.

The node side is the real one (`refinement_statistics`, `noisy_refinement`); the
reference is a non-private Poisson GLM fitted by Newton's method on the same rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.poisson import (
    encode_poisson,
    noisy_refinement,
    refinement_statistics,
)
from server.kinds.regression.poisson_fit import poisson_fit, refined_fit
from server.kinds.regression.poisson_refine import (
    MIN_INFORMATION_SNR,
    Unrefinable,
    refine,
)
from server.kinds.regression.solve import check_release
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import LinearPlan, plan_refinement
from vocab.jobs.regression_release import LinearRelease
from vocab.jobspec import FeatureSpec

TRUE = np.array([1.2, 0.4, -0.5, 0.3])
"""Encoded log rate: 1.2 + 0.4 a - 0.5 [c = q] + 0.3 [c = r]."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def _spec(**overrides: Any) -> RegressionSpec:
    fields: dict[str, Any] = {
        "name": "p", "family": Family.POISSON, "target": "y", "target_lower": 0.0,
        "target_upper": 30.0, "epsilon": 4.0, "delta": 1e-6,
        "features": (FeatureSpec("a", -1.0, 1.0), FeatureSpec("c", categories=("p", "q", "r"))),
    }  # fmt: skip
    fields.update(overrides)
    return RegressionSpec(**fields)


def _nodes(sizes: tuple[int, ...] = (6000, 8000, 7000)) -> list[pd.DataFrame]:
    frames = []
    for i, n in enumerate(sizes):
        rng = np.random.default_rng(100 + i)
        a = rng.uniform(-1, 1, n)
        c = rng.choice(["p", "q", "r"], n, p=[0.2, 0.5, 0.3])
        log_mu = TRUE[0] + TRUE[1] * a + TRUE[2] * (c == "q") + TRUE[3] * (c == "r")
        frames.append(pd.DataFrame({"a": a, "c": c, "y": rng.poisson(np.exp(log_mu))}))
    return frames


def _glm(spec: RegressionSpec, frames: list[pd.DataFrame]) -> FloatArray:
    x, y, _ = encode_poisson(pd.concat(frames), spec)
    design, target = x.astype(np.float64), y.astype(np.float64)
    b = np.zeros(design.shape[1])
    b[0] = math.log(float(target.mean()))
    for _ in range(50):
        mu = np.exp(design @ b)
        b = b + np.linalg.solve((design * mu[:, None]).T @ design, design.T @ (target - mu))
    return b


def _exact(spec: RegressionSpec, frames: list[pd.DataFrame], b: FloatArray) -> list[LinearRelease]:
    """Noise-free releases (a tiny stated std) at model `b`."""
    d = spec.n_coefficients
    out = []
    for frame in frames:
        x, y, offset = encode_poisson(frame, spec)
        v = refinement_statistics(x, y, offset, b, spec)
        t = d * (d + 1) // 2
        out.append(LinearRelease(tuple(v[:t]), tuple(v[t : t + d]), float(v[-1]), 1e-9))
    return out


def _noisy(spec: RegressionSpec, frames: list[pd.DataFrame], b: FloatArray) -> list[LinearRelease]:
    plan = plan_refinement(spec)
    assert plan is not None
    return [noisy_refinement(*encode_poisson(f, spec), b, spec, plan) for f in frames]


def test_one_step_from_a_nearby_start_lands_on_the_glm() -> None:
    spec, frames = _spec(), _nodes()
    glm = _glm(spec, frames)
    # DP-SGD's typical miss: the intercept well off, the slopes a few hundredths off.
    start = glm + np.array([-0.5, 0.05, -0.04, 0.03])
    refined = refine(spec, start, _exact(spec, frames, start), 1e-9)
    assert np.max(np.abs(refined.coefficients - glm)) < 0.02
    again = refine(spec, refined.coefficients, _exact(spec, frames, refined.coefficients), 1e-9)
    assert np.max(np.abs(again.coefficients - glm)) < 1e-5  # Newton converges quadratically


def test_the_noise_std_errors_match_the_spread_of_real_noisy_releases() -> None:
    spec, frames = _spec(), _nodes()
    glm = _glm(spec, frames)
    start = glm + np.array([0.2, -0.05, 0.05, 0.0])
    fits = [refine(spec, start, _noisy(spec, frames, start), _std(spec), seed=i) for i in range(40)]
    spread = np.std([f.coefficients for f in fits], axis=0)
    bootstrap = np.sqrt(np.diag(fits[0].noise))
    assert np.all(bootstrap > 0.6 * spread) and np.all(bootstrap < 1.6 * spread)
    # And the intervals (sampling + noise) cover the GLM's coefficients as they say.
    covered = [
        np.abs(f.coefficients - glm) <= 1.96 * np.sqrt(np.diag(f.sampling + f.noise)) for f in fits
    ]
    assert np.mean(covered) >= 0.85
    assert all(f.weakest_snr >= MIN_INFORMATION_SNR and f.dispersion >= 1.0 for f in fits)


def _std(spec: RegressionSpec) -> float:
    plan = plan_refinement(spec)
    assert isinstance(plan, LinearPlan)
    return plan.noise_std


def test_information_buried_in_noise_is_not_refined() -> None:
    spec = _spec(epsilon=0.05, target_upper=1000.0)  # a loose bound and a tiny epsilon
    frames = _nodes((300, 300))
    start = _glm(spec, frames)
    with pytest.raises(Unrefinable, match="too noisy to refine"):
        refine(spec, start, _noisy(spec, frames, start), _std(spec))


def test_the_dispersion_sees_overdispersed_counts() -> None:
    spec, frames = _spec(), _nodes()
    rng = np.random.default_rng(5)
    # Negative binomial counts with the same means: variance mu + mu^2 / 2.
    wide = [f.assign(y=rng.negative_binomial(2, 2 / (2 + f["y"].clip(lower=0.5)))) for f in frames]
    glm = _glm(spec, wide)
    plain = refine(spec, glm, _exact(spec, frames, _glm(spec, frames)), 1e-9)
    spread = refine(spec, glm, _exact(spec, wide, glm), 1e-9)
    assert plain.dispersion == pytest.approx(1.0, abs=0.1)
    assert spread.dispersion > 1.8
    assert np.all(np.diag(spread.sampling) > 1.5 * np.diag(plain.sampling))


def test_implausible_releases_are_refused() -> None:
    spec = _spec()
    d = spec.n_coefficients
    good = _exact(spec, _nodes((500,)), np.zeros(d))[0]
    check_release(good, d, 1.0, vector_bounded=False)
    negative = dataclasses.replace(good, xtx_upper=(-100.0, *good.xtx_upper[1:]))
    oversized = dataclasses.replace(good, xtx_upper=(good.xtx_upper[0], 1e9, *good.xtx_upper[2:]))
    negative_squares = dataclasses.replace(good, yty=-100.0)
    for bad in (negative, oversized, negative_squares):
        with pytest.raises(ValueError):
            check_release(bad, d, 1.0, vector_bounded=False)
    # A score may exceed the information total (rows with y far above mu): not refused.
    big_score = dataclasses.replace(good, xty=(10 * good.xtx_upper[0], *good.xty[1:]))
    check_release(big_score, d, 1.0, vector_bounded=False)
    with pytest.raises(ValueError):
        check_release(big_score, d, 1.0)  # as a linear release it would be impossible
    with pytest.raises(ValueError, match="design columns"):
        check_release(good, d + 1, 1.0, vector_bounded=False)


def test_a_refined_fit_reports_raw_units_with_intervals() -> None:
    spec = _spec(
        features=(FeatureSpec("a", 0.0, 10.0), FeatureSpec("c", categories=("p", "q", "r")))
    )
    frames = [f.assign(a=(f["a"] + 1.0) * 5.0) for f in _nodes()]
    glm = _glm(spec, frames)
    refinement = refine(spec, glm, _noisy(spec, frames, glm), _std(spec))
    weights = [glm.astype(np.float32).reshape(1, -1)]
    fit = refined_fit(spec, weights, refinement)
    doc = fit.to_json_dict()
    assert doc["refined"] is True and doc["confidence"] == 0.95
    plain = poisson_fit(spec, [refinement.coefficients.astype(np.float32).reshape(1, -1)])
    for row, raw in zip(doc["coefficients"], plain.coefficients, strict=True):
        assert row["estimate"] == pytest.approx(raw, rel=1e-5, abs=1e-6)
        assert row["lower"] < row["estimate"] < row["upper"]
        assert row["rate_ratio_lower"] == pytest.approx(math.exp(row["lower"]))
        assert 0 < row["noise_std_error"] < row["std_error"]
    # a per unit of raw a is the encoded slope over the range's half-width (5).
    assert doc["coefficients"][1]["std_error"] == pytest.approx(
        math.sqrt(refinement.sampling[1, 1] + refinement.noise[1, 1]) / 5.0, rel=1e-6
    )
    assert "note" not in doc and poisson_fit(spec, weights, note="why").to_json_dict()["note"]
