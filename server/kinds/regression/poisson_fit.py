"""A poisson regression at the coordinator: its starting model, its coefficients in raw
units (with standard errors and intervals once refined), and the deviance a fitted model
has on data (for tests and benchmarks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vocab.jobs.regression import RegressionSpec
from vocab.jobs.regression_plan import design_scaling
from vocab.jobs.statistics_plan import Z95

if TYPE_CHECKING:
    from server.kinds.regression.poisson_refine import Refinement

__all__ = ["PoissonFit", "initial_weights", "poisson_deviance", "poisson_fit", "refined_fit"]

FloatArray = npt.NDArray[np.float64]


def initial_weights(spec: RegressionSpec) -> list[npt.NDArray[np.float32]]:
    """The model every node starts from: all coefficients 0 (a rate of 1 everywhere).

    In the layout the nodes' model has (`clients.kinds.regression.poisson.poisson_model`):
    one weight matrix of shape (1, n_coefficients), intercept first.
    """
    return [np.zeros((1, spec.n_coefficients), dtype=np.float32)]


def _encoded(spec: RegressionSpec, weights: list[npt.NDArray[np.float32]]) -> FloatArray:
    if len(weights) != 1 or np.asarray(weights[0]).size != spec.n_coefficients:
        raise ValueError(f"a poisson model is one array of {spec.n_coefficients} weights")
    coefficients = np.asarray(weights[0], dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(coefficients)):
        raise ValueError("a poisson model's weights must be finite")
    return coefficients


@dataclass(frozen=True)
class PoissonFit:
    """A poisson regression's coefficients on the log-rate scale, in raw feature units.

    `rate_ratios` are exp(coefficient): the factor by which the expected count changes per
    unit of a numeric feature (of log1p of it when logged) or for a level against the
    reference level; the intercept's is the rate at raw features 0 and reference levels.

    A refined fit (`refined_fit`) also has standard errors (sampling and DP noise), 95 %
    intervals of the coefficients (exp of them bound the rate ratios), the part of each
    std error due to the noise alone, the dispersion used, the weakest direction's
    information in noise stds and the DP-SGD coefficients it started from; an unrefined
    one leaves them empty and may say why in `note`.
    """

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    rate_ratios: tuple[float, ...]
    std_errors: tuple[float, ...] = field(default=())
    lower: tuple[float, ...] = field(default=())
    upper: tuple[float, ...] = field(default=())
    noise_std_errors: tuple[float, ...] = field(default=())
    sgd_coefficients: tuple[float, ...] = field(default=())
    dispersion: float | None = None
    weakest_snr: float | None = None
    note: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """One row per coefficient, then the refinement's figures, JSON-ready."""
        rows: list[dict[str, Any]] = []
        for i, (name, estimate, ratio) in enumerate(
            zip(self.names, self.coefficients, self.rate_ratios, strict=True)
        ):
            row: dict[str, Any] = {"name": name, "estimate": estimate, "rate_ratio": ratio}
            if self.std_errors:
                lo, hi = self.lower[i], self.upper[i]
                row.update(
                    std_error=self.std_errors[i], lower=lo, upper=hi,
                    rate_ratio_lower=_exp(lo), rate_ratio_upper=_exp(hi),
                    noise_std_error=self.noise_std_errors[i],
                    sgd_estimate=self.sgd_coefficients[i],
                )  # fmt: skip
            rows.append(row)
        doc: dict[str, Any] = {"coefficients": rows, "refined": bool(self.std_errors)}
        if self.std_errors:
            doc.update(confidence=0.95, dispersion=self.dispersion, weakest_snr=self.weakest_snr)
        if self.note:
            doc["note"] = self.note
        return doc


def _exp(value: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.exp(value))


def _raw(spec: RegressionSpec) -> tuple[FloatArray, FloatArray]:
    """(M, m): raw-unit coefficients are M @ b + m (the target is not rescaled)."""
    scaling = replace(design_scaling(spec), target_slope=1.0, target_offset=0.0)
    return scaling.to_original_units()


def poisson_fit(
    spec: RegressionSpec, weights: list[npt.NDArray[np.float32]], *, note: str = ""
) -> PoissonFit:
    """The trained model's coefficients mapped from the encoded features to raw units.

    With x_j = a_j t_j + c_j the encoding of raw value t_j, log(mu) = b_0 + sum_j b_j x_j
    gives beta_j = b_j a_j and beta_0 = b_0 + sum_j b_j c_j (the target is not rescaled).

    Raises:
        ValueError: The weights are not one finite array of the design's width.
    """
    b = _encoded(spec, weights)
    matrix, shift = _raw(spec)
    beta = matrix @ b + shift
    return PoissonFit(
        names=spec.coefficient_names,
        coefficients=tuple(float(v) for v in beta),
        rate_ratios=tuple(_exp(float(v)) for v in beta),
        note=note,
    )


def refined_fit(
    spec: RegressionSpec, weights: list[npt.NDArray[np.float32]], refinement: Refinement
) -> PoissonFit:
    """The refined coefficients in raw units with standard errors and 95 % intervals.

    A covariance in encoded units maps to raw units as M C M' (`DesignScaling`).

    Raises:
        ValueError: The DP-SGD weights are not one finite array of the design's width.
    """
    start = poisson_fit(spec, weights)
    matrix, shift = _raw(spec)
    beta = matrix @ refinement.coefficients + shift
    total = matrix @ (refinement.sampling + refinement.noise) @ matrix.T
    se = np.sqrt(np.maximum(np.diag(total), 0.0))
    noise_se = np.sqrt(np.maximum(np.diag(matrix @ refinement.noise @ matrix.T), 0.0))
    return PoissonFit(
        names=spec.coefficient_names,
        coefficients=tuple(float(v) for v in beta),
        rate_ratios=tuple(_exp(float(v)) for v in beta),
        std_errors=tuple(float(v) for v in se),
        lower=tuple(float(v) for v in beta - Z95 * se),
        upper=tuple(float(v) for v in beta + Z95 * se),
        noise_std_errors=tuple(float(v) for v in noise_se),
        sgd_coefficients=start.coefficients,
        dispersion=refinement.dispersion,
        weakest_snr=refinement.weakest_snr,
    )


def poisson_deviance(
    coefficients: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    offset: npt.ArrayLike | None = None,
) -> float:
    """Poisson deviance 2 sum(y log(y / mu) - (y - mu)) of a model on rows.

    Args:
        coefficients: Encoded-unit coefficients, intercept first (the model's weights).
        x: The encoded design, as the nodes encode it (intercept column first).
        y: The clipped targets.
        offset: log exposure per row; none means 0.

    Returns:
        The deviance (0 for a perfect fit; `inf` if a rate overflows).
    """
    b = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    design = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    log_mu = design @ b
    if offset is not None:
        log_mu = log_mu + np.asarray(offset, dtype=np.float64)
    with np.errstate(over="ignore"):
        mu = np.exp(log_mu)
    # y log(y / mu) is 0 at y = 0; log(y / mu) = log y - log mu avoids mu underflowing.
    positive = target > 0
    y_log = np.zeros_like(target)
    y_log[positive] = target[positive] * (np.log(target[positive]) - log_mu[positive])
    deviance = 2.0 * float(np.sum(y_log - (target - mu)))
    return deviance if math.isfinite(deviance) else math.inf
