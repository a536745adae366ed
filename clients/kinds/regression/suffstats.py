"""A linear regression's one release at the node: its encoded rows' noisy sufficient statistics.

The design and the noise follow `vocab.jobs.regression_plan` (encoding, sensitivity and
calibration are derived there); this module touches the rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from clients.secure_noise import gaussian_floats
from vocab.errors import InternalError
from vocab.jobs.regression import RegressionSpec
from vocab.jobs.regression_plan import LinearPlan, design_scaling
from vocab.jobs.regression_release import LinearRelease

__all__ = [
    "clamped_target",
    "encode_design",
    "encode_rows",
    "noised_release",
    "noisy_sufficient_statistics",
    "sufficient_statistics",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _numeric(values: pd.Series) -> FloatArray:
    as_float: FloatArray = pd.to_numeric(values, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return as_float


def _levels(values: pd.Series, levels: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """Each value's index among the declared levels as text; -1 when not one of them."""
    as_text = values.astype("string")
    missing = as_text.isna().to_numpy(dtype=bool)
    text = as_text.fillna("").to_numpy(dtype=object)
    index = {level: i for i, level in enumerate(levels)}
    found = np.fromiter((index.get(v, -1) for v in text), dtype=np.intp, count=len(text))
    found[missing] = -1
    return found


def encode_rows(frame: pd.DataFrame, spec: RegressionSpec) -> tuple[FloatArray, BoolArray]:
    """Every row's design (intercept first) and whether its features are complete.

    Numeric values are clipped to their declared bounds (log1p first when `log`) and mapped
    onto [-1, 1]; a categorical value becomes 0/1 inputs for the declared levels after the
    first (the reference, all zeros). A row is incomplete when a numeric feature is missing
    or not a number, or a categorical value is not a declared level (compared as text).

    Returns:
        (X, complete): X of shape (len(frame), spec.n_coefficients), float64.
    """
    scaling = design_scaling(spec)
    rows = len(frame)
    complete = np.ones(rows, dtype=bool)
    blocks: list[FloatArray] = [np.ones((rows, 1))]
    column = 0
    for f in spec.features:
        if f.is_categorical:
            index = _levels(frame[f.column], f.categories)
            complete &= index >= 0
            width = len(f.categories) - 1
            onehot = (index[:, None] == np.arange(1, width + 1)[None, :]).astype(np.float64)
            blocks.append(onehot)
            column += width
            continue
        x = _numeric(frame[f.column])
        complete &= np.isfinite(x)
        x = np.clip(np.nan_to_num(x, nan=f.lower), f.lower, f.upper)
        if f.log:
            x = np.log1p(x)
        encoded = scaling.slopes[column] * x + scaling.offsets[column]
        blocks.append(np.clip(encoded, -1.0, 1.0)[:, None])
        column += 1
    return np.concatenate(blocks, axis=1), complete


def clamped_target(frame: pd.DataFrame, spec: RegressionSpec) -> tuple[FloatArray, BoolArray]:
    """Every row's target clipped to its declared bounds, and whether it was a number."""
    y = _numeric(frame[spec.target])
    present = np.isfinite(y)
    y = np.clip(np.nan_to_num(y, nan=spec.target_lower), spec.target_lower, spec.target_upper)
    return y, present


def encode_design(frame: pd.DataFrame, spec: RegressionSpec) -> tuple[FloatArray, FloatArray]:
    """The design matrix and target of the rows a linear regression uses, all in [-1, 1].

    The design is `encode_rows`'s (the first column is the intercept); the target is
    clipped to its declared bounds and mapped onto [-1, 1].

    Only complete rows are used, as least squares does: a row whose target or numeric
    feature is missing or not a number, or whose categorical value is not a declared level,
    is left out. Whether a row is left out depends on that row alone, so a person still
    moves the statistics by at most their own rows.

    Returns:
        (X, y): X of shape (rows, spec.n_coefficients), y of shape (rows,), float64.
    """
    scaling = design_scaling(spec)
    design, keep = encode_rows(frame, spec)
    y, present = clamped_target(frame, spec)
    keep &= present
    y_encoded = np.clip(scaling.target_slope * y + scaling.target_offset, -1.0, 1.0)
    return np.ascontiguousarray(design[keep]), np.ascontiguousarray(y_encoded[keep])


def sufficient_statistics(x: FloatArray, y: FloatArray) -> dict[str, FloatArray]:
    """The exact statistics a linear release noises.

    Returns:
        `xtx_upper` (the upper triangle of X'X, row by row, as `numpy.triu_indices`),
        `xty` (X'y) and `yty` (y'y, shape (1,)).
    """
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise InternalError(f"design {x.shape} and target {y.shape} do not match")
    xtx = x.T @ x
    rows, cols = np.triu_indices(x.shape[1])
    return {"xtx_upper": xtx[rows, cols], "xty": x.T @ y, "yty": np.array([y @ y])}


def noisy_sufficient_statistics(
    frame: pd.DataFrame, spec: RegressionSpec, plan: LinearPlan
) -> LinearRelease:
    """The node's one release for a linear job: its statistics plus the plan's noise.

    One Gaussian draw of std `plan.noise_std` is added to every entry of the concatenated
    vector (X'X's upper triangle, X'y, y'y), which is the release `plan.events()` charges
    (`noised_release`).
    """
    if plan.dims != spec.n_coefficients:
        raise InternalError(f"plan for {plan.dims} columns, spec has {spec.n_coefficients}")
    x, y = encode_design(frame, spec)
    stats = sufficient_statistics(x, y)
    return noised_release(np.concatenate((stats["xtx_upper"], stats["xty"], stats["yty"])), plan)


def noised_release(exact: FloatArray, plan: LinearPlan) -> LinearRelease:
    """A Gram-shaped vector (triangle, vector, scalar) with the plan's noise on each entry.

    The noise is OpenDP's float Gaussian (`clients.secure_noise.gaussian_floats`): sampled
    exactly and rounded, so no floating-point attack on the draw, with OS randomness.
    """
    triangle = plan.dims * (plan.dims + 1) // 2
    if exact.shape != (triangle + plan.dims + 1,):
        raise InternalError(f"{exact.shape} values for a {plan.dims}-column release")
    noisy = np.asarray(gaussian_floats(exact.tolist(), plan.noise_std), dtype=np.float64)
    if noisy.shape != exact.shape:
        raise InternalError(f"noise of shape {noisy.shape} for {exact.shape} values")
    return LinearRelease(
        xtx_upper=tuple(float(v) for v in noisy[:triangle]),
        xty=tuple(float(v) for v in noisy[triangle : triangle + plan.dims]),
        yty=float(noisy[-1]),
        noise_std=plan.noise_std,
    )
