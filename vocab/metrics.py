"""Held-out evaluation as nodes release it: a noised, coarse score histogram per class.

A node never releases an exact held-out figure. It counts its held-out rows by class and by
predicted-probability bin (edges the job spec declares), adds discrete Gaussian noise to
every cell, and charges that release. Adding or removing one row moves one cell by one, so
the histogram's L2 sensitivity is 1 whatever weights or bins the coordinator picks. The
coordinator pools the noisy histograms (post-processing: free) and derives AUC, accuracy
and the number of rows from them, with standard errors from the known noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ScoreHistogram",
    "auc_from_histograms",
    "evaluation_metrics",
    "roc_auc",
    "score_histogram",
]

# Parametric bootstrap draws for the standard errors: post-processing of released figures.
_BOOTSTRAP_DRAWS = 400


@dataclass(frozen=True)
class ScoreHistogram:
    """Per-class counts of held-out rows by score bin, each with noise of `noise_std`.

    `pos[i]` / `neg[i]` count positive / negative rows whose predicted probability falls
    in bin i (bin i holds [edge i-1, edge i) of the job's thresholds). `noise_std` is the
    standard deviation of the noise on each cell (0 for exact counts).
    """

    pos: tuple[int, ...]
    neg: tuple[int, ...]
    noise_std: float = 0.0

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """Cell-wise sums; independent noises add their variances."""
        return ScoreHistogram(
            pos=tuple(a + b for a, b in zip(self.pos, other.pos, strict=True)),
            neg=tuple(a + b for a, b in zip(self.neg, other.neg, strict=True)),
            noise_std=math.hypot(self.noise_std, other.noise_std),
        )

    def cells(self) -> list[int]:
        """Positive cells then negative cells: the vector a node noises."""
        return [*self.pos, *self.neg]

    @classmethod
    def from_cells(cls, cells: list[int], noise_std: float) -> ScoreHistogram:
        half = len(cells) // 2
        return cls(tuple(cells[:half]), tuple(cells[half:]), noise_std)


def score_histogram(
    logits: npt.ArrayLike, labels: npt.ArrayLike, thresholds: tuple[float, ...]
) -> ScoreHistogram:
    """Exact per-class counts by predicted-probability bin (the node noises them)."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1) > 0.5
    # Compared on the logit scale: no overflow for any weights the coordinator sends.
    edges = np.log(np.asarray(thresholds) / (1.0 - np.asarray(thresholds)))
    z = np.nan_to_num(z, nan=0.0, posinf=np.inf, neginf=-np.inf)
    bins = np.searchsorted(edges, z, side="right")
    width = len(thresholds) + 1
    pos = np.bincount(bins[y], minlength=width)
    neg = np.bincount(bins[~y], minlength=width)
    return ScoreHistogram(tuple(int(v) for v in pos), tuple(int(v) for v in neg))


def auc_from_histograms(pos_hist: npt.ArrayLike, neg_hist: npt.ArrayLike) -> float:
    """ROC AUC from binned scores: pairs in the same bin count one half (ties)."""
    pos = np.asarray(pos_hist, dtype=np.float64)
    neg = np.asarray(neg_hist, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos <= 0 or n_neg <= 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (n_pos * n_neg))


def _point(
    pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64], split: int
) -> tuple[float, float, float]:
    """AUC, accuracy at 0.5 and row count of one (clamped) histogram."""
    pos, neg = np.maximum(pos, 0.0), np.maximum(neg, 0.0)
    n = float(pos.sum() + neg.sum())
    correct = float(pos[split:].sum() + neg[:split].sum())
    accuracy = correct / n if n > 0 else float("nan")
    return auc_from_histograms(pos, neg), accuracy, n


def evaluation_metrics(
    hist: ScoreHistogram, thresholds: tuple[float, ...], seed: int = 0
) -> dict[str, float]:
    """AUC, accuracy at 0.5 and held-out rows of a pooled noisy histogram, with errors.

    Negative noisy cells count as zero. `*_se` are standard deviations over a parametric
    bootstrap that redraws the known noise around the released cells: what the DP noise
    alone makes uncertain (not the sampling error of a finite held-out set).

    Args:
        hist: The pooled histogram.
        thresholds: The bins' probability edges; 0.5 must be one of them.
        seed: For the bootstrap (post-processing; no privacy rests on it).
    """
    split = thresholds.index(0.5) + 1
    pos = np.asarray(hist.pos, dtype=np.float64)
    neg = np.asarray(hist.neg, dtype=np.float64)
    auc, accuracy, n = _point(pos, neg, split)
    metrics = {"auc": auc, "accuracy": accuracy, "n_holdout": n}
    if hist.noise_std > 0:
        rng = np.random.default_rng(seed)
        draws = np.array(
            [
                _point(
                    pos + rng.normal(0.0, hist.noise_std, pos.shape),
                    neg + rng.normal(0.0, hist.noise_std, neg.shape),
                    split,
                )
                for _ in range(_BOOTSTRAP_DRAWS)
            ]
        )
        for i, key in enumerate(("auc", "accuracy", "n_holdout")):
            column = draws[:, i][np.isfinite(draws[:, i])]
            metrics[f"{key}_se"] = float(column.std()) if column.size > 1 else float("nan")
    return metrics


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
