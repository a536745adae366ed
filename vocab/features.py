"""Turns a node's typed frame into model inputs using only bounds declared in the job spec."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from vocab.jobspec import FeatureSpec, RiskJobSpec
from vocab.target import TargetCondition

__all__ = ["encode_features", "encode_target"]

Float32Array = npt.NDArray[np.float32]


def _encode_numeric(values: pd.Series, feature: FeatureSpec) -> Float32Array:
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, hi = feature.lower, feature.upper
    x = np.clip(x, lo, hi)
    if feature.log:
        x, lo, hi = np.log1p(x), float(np.log1p(lo)), float(np.log1p(hi))
    scaled = 2.0 * (x - lo) / (hi - lo) - 1.0
    # A missing optional value sits at the centre of the declared range.
    out: Float32Array = np.nan_to_num(scaled, nan=0.0).astype(np.float32)[:, None]
    return out


def _encode_categorical(values: pd.Series, feature: FeatureSpec) -> Float32Array:
    as_text = values.astype("string").fillna("").to_numpy(dtype=object)
    levels = np.asarray(feature.categories, dtype=object)
    out: Float32Array = (as_text[:, None] == levels[None, :]).astype(np.float32)
    return out


def encode_features(frame: pd.DataFrame, spec: RiskJobSpec) -> Float32Array:
    """Encode the spec's features in spec order: (rows, spec.n_inputs) float32.

    Numeric values are clipped to the declared bounds and scaled to [-1, 1]; categorical
    values become one-hot over the declared levels. Nothing is learned from the data, so the
    encoding itself releases nothing about a node's rows.
    """
    blocks = [
        _encode_categorical(frame[f.column], f)
        if f.is_categorical
        else _encode_numeric(frame[f.column], f)
        for f in spec.features
    ]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)


def encode_target(frame: pd.DataFrame, spec: RiskJobSpec) -> Float32Array:
    """1.0 where the target meets `spec.positive` (`vocab.target`), else 0.0."""
    positive = TargetCondition.parse(spec.positive).matches(frame[spec.target])
    return positive.astype(np.float32)
