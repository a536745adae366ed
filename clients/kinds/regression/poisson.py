"""A poisson regression's DP-SGD round at the node: a log-link linear model, trained privately.

The model is log(mu) = x'b (+ log exposure), x the design `suffstats.encode_rows` gives
(intercept first, features in [-1, 1]) and the target clipped to its declared bounds; the
loss is the Poisson negative log-likelihood (torch's `PoissonNLLLoss(log_input=True)`).
Training goes through Opacus exactly as the risk kind's does (`clients.training.dp_sgd`):
per-sample clipping to `max_grad_norm`, Gaussian noise and Poisson batches from the
node's secure generator, a row with a non-finite gradient contributing nothing, and the
batches drawn over the officer's public size figure. The round's release is one
`DpSgdEvent` of the `PoissonPlan` (`vocab.jobs.regression_plan`).

After the rounds, the refinement release (`noisy_refinement`): the node's Fisher
information, score and squared residuals at the coordinator's final model, each row's
part bounded as `vocab.jobs.regression_plan` derives, with one Gaussian draw per entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from torch import nn

from clients.kinds.regression.suffstats import clamped_target, encode_rows, noised_release
from clients.training.dp_sgd import RoundResult, SgdSettings, dp_sgd_round
from vocab.errors import InternalError
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import LinearPlan, PoissonPlan

if TYPE_CHECKING:
    from vocab.jobs.regression_release import LinearRelease

__all__ = [
    "encode_poisson",
    "noisy_refinement",
    "poisson_model",
    "refinement_statistics",
    "train_poisson_round",
]

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


def encode_poisson(
    frame: pd.DataFrame, spec: RegressionSpec
) -> tuple[Float32Array, Float32Array, Float32Array]:
    """The design, clipped target and log-exposure offset of the rows a poisson job uses.

    As for a linear job only complete rows are used (see `suffstats.encode_design`); with
    an `exposure` column a row whose exposure is missing or not positive is left out too.
    Without one the offset is 0.

    Returns:
        (X, y, offset): float32 arrays of shapes (rows, spec.n_coefficients), (rows,),
        (rows,).
    """
    if spec.family is not Family.POISSON:
        raise InternalError(f"encode_poisson called for a {spec.family.value} regression")
    design, keep = encode_rows(frame, spec)
    y, present = clamped_target(frame, spec)
    keep &= present
    offset = np.zeros(len(frame))
    if spec.exposure:
        exposure = pd.to_numeric(frame[spec.exposure], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        usable = np.isfinite(exposure) & (exposure > 0)
        keep &= usable
        offset = np.log(np.where(usable, exposure, 1.0))
    return (
        np.ascontiguousarray(design[keep], dtype=np.float32),
        np.ascontiguousarray(y[keep], dtype=np.float32),
        np.ascontiguousarray(offset[keep], dtype=np.float32),
    )


def poisson_model(spec: RegressionSpec, coefficients: npt.ArrayLike | None = None) -> nn.Module:
    """The log-rate model: one linear map without bias (the design carries the intercept).

    Args:
        spec: The job; its design's width fixes the model.
        coefficients: The model's weights, shape (n_coefficients,) or (1, n_coefficients),
            in encoded units; zeros (a rate of 1 everywhere) when not given.
    """
    model = nn.Linear(spec.n_coefficients, 1, bias=False)
    start = np.zeros(spec.n_coefficients) if coefficients is None else coefficients
    weight = np.asarray(start, dtype=np.float32).reshape(1, spec.n_coefficients)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(weight))
    return model


def train_poisson_round(
    model: nn.Module,
    x: Float32Array,
    y: Float32Array,
    offset: Float32Array,
    spec: RegressionSpec,
    plan: PoissonPlan,
    *,
    slots: int | None = None,
    deadline_s: float | None = None,
) -> RoundResult:
    """Run exactly `plan.steps_per_round` DP-SGD steps of Poisson regression.

    Args:
        model: The log-rate model (`poisson_model`), updated in place.
        x, y, offset: The node's rows (`encode_poisson`).
        slots: Rows the work is sized for, at least `len(x)` (default: `len(x)`); the ones
            past the data are phantom rows that contribute nothing.
        deadline_s: Wall-time limit in seconds; past it the round stops (`RoundTimeout`).

    Returns:
        The trained plain module (Opacus hooks removed) and the steps taken.

    Raises:
        RoundTimeout: The round ran past `deadline_s`.
    """
    settings = SgdSettings(
        spec.learning_rate, spec.max_grad_norm, spec.batch_size, plan.noise_multiplier,
        plan.sample_rate, plan.steps_per_round,
    )  # fmt: skip
    loss = nn.PoissonNLLLoss(log_input=True, full=False, reduction="none")
    try:
        return dp_sgd_round(
            model, x, y, settings, loss, offset=offset, slots=slots, deadline_s=deadline_s
        )
    except ValueError as err:  # the caller's rows and slots do not fit: a bug, not data
        raise InternalError(str(err)) from err


def refinement_statistics(
    x: npt.ArrayLike, y: npt.ArrayLike, offset: npt.ArrayLike, coefficients: npt.ArrayLike,
    spec: RegressionSpec,
) -> FloatArray:  # fmt: skip
    """The exact vector the refinement release noises, at encoded-unit `coefficients`.

    With W = `spec.target_upper` and m = min(exp(x'b + offset), W) per row: the upper
    triangle of sum (m / W) x x' (row by row, as `numpy.triu_indices`), then
    sum ((y - m) / W) x, then sum ((y - m) / W)^2. Each row's part has L2 norm at most
    sqrt((B + 1)(B + 2) / 2) (`vocab.jobs.regression_plan`).

    Returns:
        float64 of length d (d + 1) / 2 + d + 1, d = `spec.n_coefficients`.
    """
    design = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    b = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    d = spec.n_coefficients
    if design.ndim != 2 or design.shape[1] != d or b.shape != (d,):
        raise InternalError(f"design {design.shape} and {b.shape} coefficients for {d} columns")
    scale = spec.target_upper
    with np.errstate(over="ignore"):
        mu = np.exp(design @ b + np.asarray(offset, dtype=np.float64))
    weight = np.minimum(mu, scale) / scale
    residual = np.clip(target, 0.0, scale) / scale - weight
    information = (design * weight[:, None]).T @ design
    rows, cols = np.triu_indices(d)
    return np.concatenate(
        (information[rows, cols], design.T @ residual, [float(residual @ residual)])
    )


def noisy_refinement(
    x: npt.ArrayLike, y: npt.ArrayLike, offset: npt.ArrayLike, coefficients: npt.ArrayLike,
    spec: RegressionSpec, plan: LinearPlan,
) -> LinearRelease:  # fmt: skip
    """The refinement release: `refinement_statistics` plus the plan's Gaussian noise on
    every entry (`suffstats.noised_release`).

    It travels as a `LinearRelease` (same shape): `xtx_upper` the information triangle,
    `xty` the score, `yty` the squared residuals, all over W.
    """
    if plan.dims != spec.n_coefficients:
        raise InternalError(f"plan for {plan.dims} columns, spec has {spec.n_coefficients}")
    return noised_release(refinement_statistics(x, y, offset, coefficients, spec), plan)
