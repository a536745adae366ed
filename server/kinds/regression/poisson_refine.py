"""A poisson regression's refinement at the coordinator: one Newton step from the DP-SGD
fit, on the nodes' pooled noisy score and Fisher information, with standard errors.

DP-SGD with per-sample clipping leans towards the typical row (a median-like fit whose
intercept can be far off when counts vary widely) and says nothing about its own
uncertainty. A Newton step from a consistent start is a one-step estimator (Le Cam): it
is as good as the maximum-likelihood fit up to the start's error squared. Each node
released, at the final DP-SGD model b0 and with W the target's upper bound and
m = min(mu, W) (`vocab.jobs.regression_plan`):

    H = sum (m / W) x x'  (+ noise),   s = sum ((y - m) / W) x  (+ noise),
    r = sum ((y - m) / W)^2  (+ noise).

Summed over nodes (noise stds add in quadrature), the step is, in the encoded units:

1. The intercept exactly, in closed form: exp(b_0) times c = sum y / sum m =
   (s_0 + H_00) / H_00 sets the total expected count to the observed total (the
   likelihood equation of the intercept). Every mu scales by c, so the information and
   score at the shifted model are c H and s + (1 - c) H e_0 (clamping at W ignored there).
2. The rest by Newton on c H and s' = s + (1 - c) H e_0, with the intercept profiled out:
   the slopes solve S d = s'_1 - b s'_0 / a, where a = (c H)_00, b the rest of c H's first
   column and S = C - b b' / a the Schur complement (the information of the centred
   design: x'x itself is nearly singular when a categorical's reference level is rare);
   the intercept then moves by (s'_0 - b'd) / a.

The step needs S to be known well: noise E (entries of std s on the triangle) moves an
eigenvalue with unit eigenvector v by about v'Ev, whose std is at most sqrt(2) s, and a
direction whose information is not clearly above the noise cannot be inverted honestly -
a ridge or floor there shrinks the step, leaving the start's error in that direction,
which no noise bootstrap sees (on 900 rows an interval so made missed the non-private
fit by five of its std errors). So the fit is refined only when every eigenvalue of the
noisy S is at least 4 noise stds (c s; about 2.8 stds of its own noise): `Unrefinable`
otherwise, and the job reports the DP-SGD fit without standard errors, saying why.

Standard errors add two independent parts, as the linear fit's do:

* sampling: the quasi-Poisson covariance phi / W times the inverse of c H
  (by blocks, as above), with dispersion
  phi = sum (y - mu)^2 / sum y = W r / (s_0 + H_00), floored at 1 (never narrower than
  the Poisson model's). The residuals are the start's, which are no smaller than the
  fit's, so phi errs high;
* noise: a parametric bootstrap - redraw the noise of H and s at its known std, redo
  steps 1 and 2 (in a draw whose S falls below the 4-std floor, S's low eigenvalues are
  lifted to it, so that one draw cannot dominate), take the covariance of the results.

They are conditional on the start b0 (its own error enters the step only squared) and
cover the coefficients of the clamped population model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.kinds.regression.solve import noise_draws
from vocab.jobs.regression import RegressionSpec
from vocab.jobs.regression_release import LinearRelease

__all__ = ["MIN_INFORMATION_SNR", "Refinement", "Unrefinable", "refine"]

FloatArray = npt.NDArray[np.float64]

_DRAWS = 400
"""Noise redraws of the bootstrap."""

MIN_INFORMATION_SNR = 4.0
"""The least eigenvalue of the slopes' noisy information, in noise stds, a fit is refined at."""

_MAX_LOG_SHIFT = 10.0
"""Largest intercept correction taken (a factor of e^10 in the rate); beyond it the noisy
totals are not believed and the correction is capped."""


class Unrefinable(ValueError):
    """The released information is too noisy to refine the fit (see the module docstring)."""


@dataclass(frozen=True)
class Refinement:
    """The refined coefficients and their covariance, in encoded units.

    Attributes:
        coefficients: The one-step estimate.
        sampling: The quasi-Poisson sampling covariance.
        noise: The covariance due to the released noise (bootstrap).
        dispersion: The dispersion phi used (>= 1).
        weakest_snr: The least eigenvalue of the slopes' noisy information over its noise
            std (at least `MIN_INFORMATION_SNR`; inf for an intercept-only model).
    """

    coefficients: FloatArray
    sampling: FloatArray
    noise: FloatArray
    dispersion: float
    weakest_snr: float


def _steps(
    start: FloatArray, information: FloatArray, score: FloatArray, std: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Steps 1 and 2 of the module docstring for one (H, s) or a stack of them, released
    with noise of std `std`: the estimates, the least eigenvalue of the slopes' information
    over its noise std, and the inverse of c H with the slopes' block floored at
    `MIN_INFORMATION_SNR` stds (the sampling covariance over phi / W)."""
    h00 = information[..., 0, 0]
    total = score[..., 0] + h00
    usable = (h00 > 0) & (total > 0)
    ratio = np.divide(total, h00, out=np.ones_like(h00), where=usable)
    log_shift = np.clip(np.log(ratio), -_MAX_LOG_SHIFT, _MAX_LOG_SHIFT)
    factor = np.exp(log_shift)
    scaled = factor[..., None, None] * information
    shifted = score + (1.0 - factor)[..., None] * information[..., :, 0]
    estimate = start + np.zeros_like(shifted)
    estimate[..., 0] += log_shift
    # c H's noise is c times the released; the intercept's information and the slopes'
    # eigenvalues below the floor are lifted to it (only ever in bootstrap draws).
    noise = std * factor
    threshold = MIN_INFORMATION_SNR * noise
    pivot = np.maximum(scaled[..., 0, 0], threshold)[..., None]
    if information.shape[-1] == 1:
        return estimate, np.full_like(h00, np.inf), 1.0 / pivot[..., None]
    # Slopes with the intercept profiled out: the Schur complement of the intercept entry
    # (the information of the centred design, well conditioned where x'x itself is not).
    cross = scaled[..., 1:, 0]
    schur = scaled[..., 1:, 1:] - cross[..., :, None] * cross[..., None, :] / pivot[..., None]
    target = shifted[..., 1:] - cross * shifted[..., :1] / pivot
    values, vectors = np.linalg.eigh(schur)
    floored = np.maximum(values, threshold[..., None])
    transposed = np.swapaxes(vectors, -1, -2)
    slopes = ((vectors / floored[..., None, :]) @ (transposed @ target[..., None]))[..., 0]
    estimate[..., 1:] += slopes
    estimate[..., 0] += (shifted[..., 0] - np.sum(cross * slopes, axis=-1)) / pivot[..., 0]
    # The block inverse of [[a, b'], [b, C]] with S = C - b b' / a floored: S^-1 for the
    # slopes, -S^-1 b / a across, 1 / a + b' S^-1 b / a^2 for the intercept.
    schur_inverse = (vectors / floored[..., None, :]) @ transposed
    across = -(schur_inverse @ cross[..., None])[..., 0] / pivot
    inverse = np.zeros_like(scaled)
    inverse[..., 1:, 1:] = schur_inverse
    inverse[..., 1:, 0] = across
    inverse[..., 0, 1:] = across
    inverse[..., 0, 0] = (1.0 - np.sum(cross * across, axis=-1)) / pivot[..., 0]
    return estimate, values[..., 0] / noise, inverse


def refine(
    spec: RegressionSpec,
    start: npt.ArrayLike,
    releases: Sequence[LinearRelease],
    noise_std: float,
    *,
    seed: int | None = None,
    draws: int = _DRAWS,
) -> Refinement:
    """The one-step estimate from the DP-SGD model `start` and the nodes' releases.

    Args:
        spec: The poisson job.
        start: The model the nodes released at: encoded coefficients, intercept first.
        releases: One checked release per node (`solve.check_release` with
            `vector_bounded=False`).
        noise_std: The planned noise std of each release.
        seed: Seeds the noise bootstrap (default: the spec's seed).
        draws: Noise redraws of the bootstrap, >= 2.

    Raises:
        Unrefinable: The slopes' information is not clearly above its noise.
        ValueError: No releases, a release of the wrong shape, or a bad argument.
    """
    if not releases:
        raise ValueError("no refinement releases to combine")
    if draws < 2:
        raise ValueError(f"draws must be at least 2, got {draws!r}")
    if not (math.isfinite(noise_std) and noise_std > 0):
        raise ValueError(f"noise std must be positive and finite, got {noise_std!r}")
    dims = spec.n_coefficients
    b0 = np.asarray(start, dtype=np.float64).reshape(-1)
    if b0.shape != (dims,) or not np.all(np.isfinite(b0)):
        raise ValueError(f"the start must be {dims} finite coefficients")
    for release in releases:
        if release.dims != dims:
            raise ValueError(f"a release has {release.dims} design columns, expected {dims}")
    information = np.sum([r.xtx() for r in releases], axis=0)
    score = np.sum([np.asarray(r.xty) for r in releases], axis=0)
    squares = math.fsum(r.yty for r in releases)
    std = noise_std * math.sqrt(len(releases))
    total = float(score[0] + information[0, 0])
    if not min(total, float(information[0, 0])) >= MIN_INFORMATION_SNR * std:
        raise Unrefinable(
            "the released totals are too noisy to refine: the expected and observed counts "
            f"are not {MIN_INFORMATION_SNR:g} noise stds above 0 (more rows, a tighter "
            "target_upper, or more epsilon or refine_share would help)"
        )
    estimate, snr, inverse = _steps(b0, information, score, std)
    if not float(snr) >= MIN_INFORMATION_SNR:
        raise Unrefinable(
            f"the released information is too noisy to refine: its weakest direction is "
            f"{float(snr):.3g} noise stds, below {MIN_INFORMATION_SNR:g} (more rows, a "
            "tighter target_upper, or more epsilon or refine_share would help)"
        )
    scale = spec.target_upper
    dispersion = max(1.0, scale * squares / total) if squares > 0 else 1.0
    sampling: FloatArray = dispersion / scale * inverse
    rng = np.random.default_rng(spec.seed if seed is None else seed)
    info_draws, score_draws = noise_draws(information, score, std, draws, rng)
    solutions, _, _ = _steps(b0, info_draws, score_draws, std)
    noise: FloatArray = np.atleast_2d(np.cov(solutions, rowvar=False))
    return Refinement(estimate, sampling, noise, dispersion, float(snr))
