"""The risk model's computations at the node: a DP-SGD round with the logistic loss (the
shared DP-SGD engine, `clients.training.dp_sgd`) and the exact held-out score histogram
that the kind noises before it leaves."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from clients.kinds.risk.plan import DpPlan
from clients.training.dp_sgd import RoundResult, SgdSettings, dp_sgd_round
from vocab.metrics import ScoreHistogram, score_histogram

__all__ = ["evaluate", "train_round"]


def train_round(
    model: nn.Module,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    plan: DpPlan,
    *,
    slots: int | None = None,
    deadline_s: float | None = None,
) -> RoundResult:
    """A risk model's DP-SGD round: `dp_sgd_round` with the logistic loss and the plan's
    hyperparameters (the spec's, or the defaults the node chose)."""
    chosen = plan.training
    settings = SgdSettings(
        chosen.learning_rate, chosen.max_grad_norm, chosen.batch_size, plan.noise_multiplier,
        plan.sample_rate, plan.steps_per_round,
    )  # fmt: skip
    loss = nn.BCEWithLogitsLoss(reduction="none")
    return dp_sgd_round(model, x, y, settings, loss, slots=slots, deadline_s=deadline_s)


def evaluate(
    model: nn.Module,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    thresholds: tuple[float, ...],
) -> ScoreHistogram:
    """Exact per-class score histogram of `model` on held-out rows (the caller noises it)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).squeeze(-1).numpy()
    return score_histogram(logits, y, thresholds)
