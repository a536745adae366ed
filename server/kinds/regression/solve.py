"""The coordinator's linear fit: the nodes' noisy sufficient statistics summed and solved.

Sufficient statistics add across nodes, and so do the variances of their independent
noises: the pooled X'X, X'y and y'y carry Gaussian noise of std s = sqrt(sum_i s_i^2) on
every entry, s_i the std node i added.

Ridge. The pooled noisy X'X need not be positive definite. AdaSSP (Y.-X. Wang, "Revisiting
differentially private linear regression: optimal and adaptive prediction & estimation in
unbounded domain", UAI 2018, Algorithm 2) solves (X'X + E + lambda I) b = X'y + e with
lambda = max(0, threshold - lambda_min), where the threshold bounds the noise's spectral
norm w.h.p. and lambda_min is a private estimate of X'X's smallest eigenvalue, bought with
a third of the budget. Here lambda_min is taken from the released noisy X'X itself, which
is post-processing and costs nothing: lambda = max(0, threshold - lambda_min(X'X + E)), so
the regularised matrix has every eigenvalue >= threshold. The threshold is

    s * (2 sqrt(d) + 2 sqrt(ln(1 / rho))),  rho = 1e-3,

the spectral norm of a d x d symmetric Gaussian matrix with entry std s: its mean is about
2 s sqrt(d) (the semicircle law's edge) and it exceeds the mean by s t with probability
below exp(-t^2 / 4) (Gaussian concentration: the norm is sqrt(2) s-Lipschitz in the
independent entries). A data-independent lambda of that size would instead bias every fit
by about lambda / eigenvalue even when the data are well conditioned (some 5 % of each
coefficient at n = 20,000, epsilon = 1), which no interval reports; with the adaptive rule
a well-conditioned fit gets lambda = 0 and is unbiased OLS on the noisy statistics.

Standard errors, in the encoded units and then mapped to the raw ones, add two independent
sources:

* sampling: sigma^2 (X'X + lambda I)^-1 with sigma^2 = RSS / (n - d), the residual sum of
  squares RSS = y'y - 2 b'X'y + b'X'X b computed from the noisy statistics (clipped at a
  tiny positive value) and n the noisy count (X'X's intercept entry);
* noise: a parametric bootstrap around the released statistics - redraw the noise at the
  known std s, re-apply the ridge rule, re-solve, take the covariance of the solutions.

The intervals are normal 95 % intervals from their sum; they cover the coefficient of the
clamped population regression. When lambda > 0 the fit is shrunk and the intervals do not
account for that bias (`LinearFit.ridge` says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import design_scaling
from vocab.jobs.regression_release import LinearRelease
from vocab.jobs.statistics_plan import Z95

__all__ = [
    "LinearFit",
    "check_release",
    "noise_draws",
    "ridge_threshold",
    "solve_linear",
]

FloatArray = npt.NDArray[np.float64]


_RHO = 1e-3
"""Chance, at most, that the noise's spectral norm exceeds the ridge threshold."""

_PLAUSIBLE_SIGMAS = 8.0
"""How many noise stds an entry of a release may stray beyond what true statistics allow.

A Gaussian exceeds 8 stds with probability about 1.2e-15, so an honest node is refused by
this check about once in 10^12 releases of even the largest design."""

_SIGMA2_FLOOR = 1e-12
"""Smallest residual variance (encoded units) used, when the noisy RSS is not positive."""

_DRAWS = 400
"""Noise redraws of the bootstrap: the noise part of a std error is then within ~4 %."""


@dataclass(frozen=True)
class LinearFit:
    """A linear regression's coefficients in the target's and features' raw units.

    Attributes:
        names: Coefficient names (`RegressionSpec.coefficient_names`).
        coefficients: Point estimates.
        std_errors: Standard errors: sampling and DP noise together.
        lower: Lower ends of the 95 % intervals.
        upper: Upper ends of the 95 % intervals.
        rmse: Estimated residual standard deviation, in the target's units.
        n_estimate: The noisy number of rows used, summed over the nodes.
        ridge: The ridge lambda added to the encoded X'X; 0 when the noisy X'X was well
            conditioned (then the fit is unshrunk and the intervals nominal).
        noise_std_errors: The part of each std error due to the DP noise alone.
    """

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    std_errors: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    rmse: float
    n_estimate: float
    ridge: float
    noise_std_errors: tuple[float, ...] = field(default=())

    def to_json_dict(self) -> dict[str, Any]:
        """The fit as JSON-ready values: one row per coefficient, then the fit's figures."""
        rows = [
            {
                "name": name,
                "estimate": estimate,
                "std_error": se,
                "lower": lo,
                "upper": hi,
                "noise_std_error": noise,
            }
            for name, estimate, se, lo, hi, noise in zip(
                self.names,
                self.coefficients,
                self.std_errors,
                self.lower,
                self.upper,
                self.noise_std_errors or (math.nan,) * len(self.names),
                strict=True,
            )
        ]
        return {
            "coefficients": rows,
            "confidence": 0.95,
            "rmse": self.rmse,
            "n_estimate": self.n_estimate,
            "ridge": self.ridge,
        }


def ridge_threshold(noise_std: float, dims: int) -> float:
    """Smallest eigenvalue the regularised X'X is lifted to (see the module docstring)."""
    return noise_std * (2.0 * math.sqrt(dims) + 2.0 * math.sqrt(math.log(1.0 / _RHO)))


def _ridges(xtx: FloatArray, threshold: float | FloatArray) -> FloatArray:
    """AdaSSP's lambda = max(0, threshold - lambda_min) for one matrix or a stack of them
    (and one threshold or one per matrix)."""
    smallest = np.linalg.eigvalsh(xtx)[..., 0]
    lifted: FloatArray = np.maximum(0.0, threshold - smallest).astype(np.float64)
    return lifted


def _solve(xtx: FloatArray, xty: FloatArray, ridge: FloatArray) -> FloatArray:
    """(X'X + lambda I)^-1 X'y for one system or a stack of them."""
    eye = np.eye(xtx.shape[-1])
    regularised = xtx + ridge[..., None, None] * eye
    solved: FloatArray = np.linalg.solve(regularised, xty[..., None])[..., 0].astype(np.float64)
    return solved


def check_release(
    release: LinearRelease, dims: int, noise_std: float, *, vector_bounded: bool = True
) -> None:
    """Refuses a release that no honest node could send for a `dims`-column design.

    Every encoded value lies in [-1, 1], so every true entry of X'X, X'y and y'y is at most
    the count n (X'X's first entry) in magnitude, and diagonal entries and y'y are >= 0.
    An entry further than 8 noise stds beyond those limits (or the count below -8 stds) is
    refused. A node can still lie within the limits; this stops gross poisoning only.

    A poisson refinement has the same shape with weights in [0, 1] on each row's x x', so
    the same limits hold for its matrix and scalar; its score (the vector) is not bounded
    by the matrix's first entry, so `vector_bounded=False` leaves the vector unchecked.

    Raises:
        ValueError: Naming what is wrong.
    """
    if release.dims != dims:
        raise ValueError(f"release has {release.dims} design columns, expected {dims}")
    slack = _PLAUSIBLE_SIGMAS * noise_std
    xtx = release.xtx()
    total = xtx[0, 0]
    if total < -slack:
        raise ValueError(f"release's first entry {total:.6g} is negative beyond its noise")
    limit = total + 2.0 * slack
    vector = release.xty if vector_bounded else ()
    entries = np.concatenate((xtx.ravel(), vector, [release.yty]))
    if np.max(np.abs(entries)) > limit:
        raise ValueError("release has an entry larger than its first entry allows")
    if np.min(np.diag(xtx)) < -slack or release.yty < -slack:
        raise ValueError("release has a sum of squares negative beyond its noise")


def _stds(
    releases: Sequence[LinearRelease], noise_std: float | Sequence[float] | None
) -> list[float]:
    if noise_std is None:
        stds = [r.noise_std for r in releases]
    elif isinstance(noise_std, int | float):
        stds = [float(noise_std)] * len(releases)
    else:
        stds = [float(s) for s in noise_std]
        if len(stds) != len(releases):
            raise ValueError(f"{len(stds)} noise stds for {len(releases)} releases")
    for s in stds:
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"a noise std must be positive and finite, got {s!r}")
    return stds


def noise_draws(
    xtx: FloatArray, xty: FloatArray, std: float, draws: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """`draws` copies of (X'X, X'y) with fresh noise of std `std` on every released entry
    (the triangle's noise mirrored), for a parametric bootstrap of the noise's effect."""
    d = xtx.shape[0]
    rows, cols = np.triu_indices(d)
    upper = rng.normal(0.0, std, size=(draws, len(rows)))
    noise = np.zeros((draws, d, d))
    noise[:, rows, cols] = upper
    noise[:, cols, rows] = upper
    return xtx[None, :, :] + noise, xty[None, :] + rng.normal(0.0, std, size=(draws, d))


def _noise_covariance(
    xtx: FloatArray, xty: FloatArray, std: float, threshold: float, draws: int, seed: int
) -> FloatArray:
    """Covariance of the solution under fresh noise of std `std` (parametric bootstrap)."""
    xtx_draws, xty_draws = noise_draws(xtx, xty, std, draws, np.random.default_rng(seed))
    solutions = _solve(xtx_draws, xty_draws, _ridges(xtx_draws, threshold))
    covariance: FloatArray = np.atleast_2d(np.cov(solutions, rowvar=False))
    return covariance


def solve_linear(
    spec: RegressionSpec,
    releases: Sequence[LinearRelease],
    noise_std: float | Sequence[float] | None = None,
    *,
    seed: int | None = None,
    draws: int = _DRAWS,
) -> LinearFit:
    """Pool the nodes' noisy statistics and fit the linear regression they describe.

    Args:
        spec: The linear job.
        releases: One release per node, each already parsed (`LinearRelease.from_json`).
        noise_std: The noise std each release carries, as planned: one for all, one per
            release, or None to take what each release states.
        seed: Seeds the bootstrap of the noise's effect (default: the spec's seed), so a
            fit is reproducible from its releases.
        draws: Noise redraws of that bootstrap.

    Returns:
        The fit in raw units with standard errors, 95 % intervals and an RMSE.

    Raises:
        ValueError: No releases, a release of the wrong shape or implausible for its
            noise, or a bad noise std.
    """
    if spec.family is not Family.LINEAR:
        raise ValueError(f"solve_linear fits a linear regression, not {spec.family.value}")
    if not releases:
        raise ValueError("no releases to fit")
    if draws < 2:
        raise ValueError(f"draws must be at least 2, got {draws!r}")
    dims = spec.n_coefficients
    stds = _stds(releases, noise_std)
    for i, (release, s) in enumerate(zip(releases, stds, strict=True)):
        try:
            check_release(release, dims, s)
        except ValueError as err:
            raise ValueError(f"release {i}: {err}") from None
    xtx = np.sum([r.xtx() for r in releases], axis=0)
    xty = np.sum([np.asarray(r.xty) for r in releases], axis=0)
    yty = math.fsum(r.yty for r in releases)
    std = math.sqrt(math.fsum(s * s for s in stds))
    threshold = ridge_threshold(std, dims)
    ridge = _ridges(xtx, threshold)
    b = _solve(xtx, xty, ridge)
    count = float(xtx[0, 0])
    rss = yty - 2.0 * float(b @ xty) + float(b @ xtx @ b)
    sigma2 = max(rss, _SIGMA2_FLOOR) / max(count - dims, 1.0)
    sampling = sigma2 * np.linalg.inv(xtx + float(ridge) * np.eye(dims))
    noise = _noise_covariance(xtx, xty, std, threshold, draws, spec.seed if seed is None else seed)
    to_raw, shift = design_scaling(spec).to_original_units()
    beta = to_raw @ b + shift
    se = np.sqrt(np.maximum(np.diag(to_raw @ (sampling + noise) @ to_raw.T), 0.0))
    noise_se = np.sqrt(np.maximum(np.diag(to_raw @ noise @ to_raw.T), 0.0))
    target_slope = design_scaling(spec).target_slope
    return LinearFit(
        names=spec.coefficient_names,
        coefficients=tuple(float(v) for v in beta),
        std_errors=tuple(float(v) for v in se),
        lower=tuple(float(v) for v in beta - Z95 * se),
        upper=tuple(float(v) for v in beta + Z95 * se),
        rmse=math.sqrt(sigma2) / target_slope,
        n_estimate=max(count, 0.0),
        ridge=float(ridge),
        noise_std_errors=tuple(float(v) for v in noise_se),
    )
