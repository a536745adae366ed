"""Held-out metrics nodes can pool without sharing scores: score histograms and their AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["HOLDOUT_BINS", "HoldoutSummary", "auc_from_histograms", "roc_auc", "summarize"]

# Bin edges are uniform on the logit scale: risk scores crowd near 0 for rare events,
# where uniform-probability bins would blur the ranking the AUC measures.
HOLDOUT_BINS = 400
_LOGIT_RANGE = 12.0


@dataclass(frozen=True)
class HoldoutSummary:
    """Sufficient statistics of a model on held-out rows, additive across nodes."""

    n: int
    loss_sum: float
    correct: int
    pos_hist: tuple[int, ...]
    neg_hist: tuple[int, ...]

    def merge(self, other: HoldoutSummary) -> HoldoutSummary:
        return HoldoutSummary(
            n=self.n + other.n,
            loss_sum=self.loss_sum + other.loss_sum,
            correct=self.correct + other.correct,
            pos_hist=tuple(a + b for a, b in zip(self.pos_hist, other.pos_hist, strict=True)),
            neg_hist=tuple(a + b for a, b in zip(self.neg_hist, other.neg_hist, strict=True)),
        )

    @property
    def loss(self) -> float:
        return self.loss_sum / self.n if self.n else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def auc(self) -> float:
        return auc_from_histograms(self.pos_hist, self.neg_hist)


def _bin_index(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    clipped = np.clip(logits, -_LOGIT_RANGE, _LOGIT_RANGE)
    idx = np.floor((clipped + _LOGIT_RANGE) / (2 * _LOGIT_RANGE) * HOLDOUT_BINS).astype(np.int64)
    return np.minimum(idx, HOLDOUT_BINS - 1)


def summarize(logits: npt.ArrayLike, labels: npt.ArrayLike) -> HoldoutSummary:
    """Loss, accuracy at threshold 0.5 and per-class score histograms of one node's rows."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    # Numerically stable binary cross-entropy on logits.
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    correct = int(np.sum((z > 0) == (y > 0.5)))
    bins = _bin_index(z)
    pos = np.bincount(bins[y > 0.5], minlength=HOLDOUT_BINS)
    neg = np.bincount(bins[y <= 0.5], minlength=HOLDOUT_BINS)
    return HoldoutSummary(
        n=int(z.size),
        loss_sum=float(loss.sum()),
        correct=correct,
        pos_hist=tuple(int(v) for v in pos),
        neg_hist=tuple(int(v) for v in neg),
    )


def auc_from_histograms(pos_hist: tuple[int, ...], neg_hist: tuple[int, ...]) -> float:
    """ROC AUC from binned scores: pairs in the same bin count one half (ties)."""
    pos = np.asarray(pos_hist, dtype=np.float64)
    neg = np.asarray(neg_hist, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (n_pos * n_neg))


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Exact ROC AUC (Mann-Whitney U with mid-ranks for ties)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty_like(s)
    sorted_s = s[order]
    # Mid-ranks: every member of a tie group gets the group's average rank.
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [s.size]))
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b - 1) / 2.0 + 1.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
