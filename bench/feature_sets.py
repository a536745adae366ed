"""Candidate feature sets for the demo job, and a forward selection by cross-validation.

Selection looks only at the pooled *train* rows (k-fold cross-validated AUC of a ridge
logistic regression fitted by Newton's method), never at the holdout the benchmark reports
on. It is a design-time aid on demo data: in a deployment the analyst's feature list comes
from domain knowledge or public data, since looking at the nodes' rows is itself a release.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vocab.jobspec import FeatureSpec, RiskJobSpec
from vocab.metrics import roc_auc

__all__ = [
    "CONDITIONAL",
    "EXTRA_FEATURES",
    "NEVER_USED",
    "SelectionStep",
    "candidate_sets",
    "forward_select",
    "with_features",
]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

_SUB_GRADES = tuple(f"{grade}{n}" for grade in "ABCDEFG" for n in range(1, 6))
_EMP_LENGTHS = (
    "emp_lt_1",
    *(f"emp_{n}" for n in range(1, 10)),
    "emp_ge_10",
    "emp_unk",
)

EXTRA_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("sub_grade", categories=_SUB_GRADES),
    FeatureSpec("emp_length", categories=_EMP_LENGTHS),
    FeatureSpec("delinq_2yrs", lower=0.0, upper=10.0),
)
"""Open columns of the demo data the baseline job does not use, with public levels/bounds."""

CONDITIONAL = frozenset({"annual_inc"})
"""Columns the demo departments release only to approved jobs (income)."""

NEVER_USED = frozenset({"addr_state", "loan_id"})
"""Restricted (location) and the person id: no candidate set may contain them."""


def with_features(spec: RiskJobSpec, features: Sequence[FeatureSpec]) -> RiskJobSpec:
    """`spec` with another feature list (validated again by the spec itself)."""
    return dataclasses.replace(spec, features=tuple(features))


def _fit_logistic(x: Float64Array, y: Float64Array, l2: float) -> Float64Array:
    """Ridge logistic regression (intercept unpenalised) by Newton's method; [w..., b]."""
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + penalty * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _cv_auc(x: Float64Array, y: Float64Array, folds: npt.NDArray[np.int64], l2: float) -> float:
    aucs = []
    for k in np.unique(folds):
        test = folds == k
        w = _fit_logistic(x[~test], y[~test], l2)
        aucs.append(roc_auc(x[test] @ w[:-1], y[test]))
    return float(np.mean(aucs))


@dataclass(frozen=True)
class SelectionStep:
    """One step of forward selection: the feature added and the set's CV AUC."""

    added: str
    cv_auc: float
    gain: float


def forward_select(
    spec: RiskJobSpec,
    x: Float32Array,
    y: Float32Array,
    *,
    folds: int = 5,
    min_gain: float = 0.001,
    l2: float = 1.0,
    seed: int = 0,
) -> tuple[tuple[FeatureSpec, ...], list[SelectionStep]]:
    """Greedy forward selection of `spec.features` by k-fold CV AUC on (x, y).

    `x` must be `encode_features(rows, spec)`: each feature's block of columns is added or
    left out as a whole. Stops when the best addition gains less than `min_gain`.

    Returns:
        The selected features in the order added, and every step taken (the last step is
        the rejected one, when selection stopped on `min_gain`).
    """
    blocks: dict[str, slice] = {}
    start = 0
    for feature in spec.features:
        blocks[feature.column] = slice(start, start + feature.width)
        start += feature.width
    rng = np.random.default_rng(seed)
    fold_of = (rng.permutation(len(y)) % folds).astype(np.int64)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    chosen: list[str] = []
    steps: list[SelectionStep] = []
    best_so_far = 0.5
    while len(chosen) < len(blocks):
        scores = {}
        for name in blocks:
            if name in chosen:
                continue
            cols = np.concatenate(
                [np.arange(blocks[c].start, blocks[c].stop) for c in (*chosen, name)]
            )
            scores[name] = _cv_auc(xd[:, cols], yd, fold_of, l2)
        best = max(scores, key=lambda n: scores[n])
        gain = scores[best] - best_so_far
        steps.append(SelectionStep(best, scores[best], gain))
        if gain < min_gain:
            break
        chosen.append(best)
        best_so_far = scores[best]
    by_name = {f.column: f for f in spec.features}
    return tuple(by_name[name] for name in chosen), steps


def candidate_sets(
    baseline: Sequence[FeatureSpec], selected: Sequence[FeatureSpec]
) -> dict[str, tuple[FeatureSpec, ...]]:
    """The feature sets the benchmark compares, by name (duplicates dropped)."""
    extra = {f.column: f for f in EXTRA_FEATURES}
    base = tuple(baseline)
    sets = {
        "baseline": base,
        "baseline - annual_inc": tuple(f for f in base if f.column != "annual_inc"),
        "baseline + sub_grade": (*base, extra["sub_grade"]),
        "baseline + emp_length + delinq_2yrs": (
            *base,
            extra["emp_length"],
            extra["delinq_2yrs"],
        ),
        "baseline + all three": (*base, *EXTRA_FEATURES),
        "selected (forward CV)": tuple(selected),
        "selected - conditional": tuple(f for f in selected if f.column not in CONDITIONAL),
    }
    unique: dict[str, tuple[FeatureSpec, ...]] = {}
    for name, features in sets.items():
        used = {f.column for f in features} & NEVER_USED
        if used:
            raise ValueError(f"bug: candidate set {name!r} uses never-used column(s) {used}")
        if features not in unique.values():
            unique[name] = features
    return unique
