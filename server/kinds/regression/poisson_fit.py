"""A poisson regression at the coordinator: its starting model, its coefficients in raw
units, and the deviance a fitted model has on data (for tests and benchmarks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from vocab.jobs.regression import RegressionSpec
from vocab.jobs.regression_plan import design_scaling

__all__ = ["PoissonFit", "initial_weights", "poisson_deviance", "poisson_fit"]

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
    """

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    rate_ratios: tuple[float, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """One row per coefficient, JSON-ready."""
        return {
            "coefficients": [
                {"name": n, "estimate": c, "rate_ratio": r}
                for n, c, r in zip(self.names, self.coefficients, self.rate_ratios, strict=True)
            ]
        }


def poisson_fit(spec: RegressionSpec, weights: list[npt.NDArray[np.float32]]) -> PoissonFit:
    """The trained model's coefficients mapped from the encoded features to raw units.

    With x_j = a_j t_j + c_j the encoding of raw value t_j, log(mu) = b_0 + sum_j b_j x_j
    gives beta_j = b_j a_j and beta_0 = b_0 + sum_j b_j c_j (the target is not rescaled).

    Raises:
        ValueError: The weights are not one finite array of the design's width.
    """
    b = _encoded(spec, weights)
    scaling = replace(design_scaling(spec), target_slope=1.0, target_offset=0.0)
    matrix, shift = scaling.to_original_units()
    beta = matrix @ b + shift
    with np.errstate(over="ignore"):
        ratios = np.exp(beta)
    return PoissonFit(
        names=spec.coefficient_names,
        coefficients=tuple(float(v) for v in beta),
        rate_ratios=tuple(float(v) for v in ratios),
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
