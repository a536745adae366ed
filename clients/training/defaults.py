"""DP-SGD hyperparameters for a spec that leaves them unset, chosen from public figures only.

An analyst cannot tune on a department's rows (every trial would be a charged release), so
a risk spec may leave `local_epochs`, `batch_size`, `learning_rate` and `max_grad_norm`
out, and each node fills them in from what is public: the job's epsilon and delta, its
model and rounds, its `min_nodes` (the fewest departments whose updates are averaged) and
the officer's size figure. The rules follow the DP-training literature (large batches,
few epochs, a small clipping norm with the step scaled to it: De et al. 2022,
"Unlocking High-Accuracy Differentially Private Image Classification through Scale";
Ponomareva et al. 2023, "How to DP-fy ML", section 5) and were checked on four public
tables (`python -m bench.untuned`):

* **batch**: a tenth of the planned rows (Poisson rate 0.1, so a round of 3 local epochs is
  30 steps), at most `MAX_BATCH` rows so per-sample gradients stay small in memory;
* **clipping**: `CLIP` = 0.5: features are scaled to [-1, 1], so most rows' gradients
  exceed it and each step moves by about learning rate x clipping norm;
* **learning rate**: the largest step whose noise stays bounded. One step adds Gaussian
  noise of std `lr * sigma * C / B` to each weight; over the job's `T` steps that walk
  grows as its square root, and averaging `K` departments' independent noise divides it
  by sqrt(K). The rate is set so the walk is `NOISE_WALK[model]` (in units of the [-1, 1]
  feature scale): `lr = walk * sqrt(K) * B / (sigma * C * sqrt(T))`, capped so one
  step moves at most `MAX_STEP`. With little noise (large tables, large epsilon)
  the cap rules; with much noise (small tables, small epsilon) the walk does, where a
  fixed rate would let noise carry the weights away (the MLP's rising loss). The
  logistic model is allowed a longer walk than the MLP: its loss is convex and its
  ranking depends only on the direction of its weights, so larger steps buy more signal
  than the noise costs, where an MLP's hidden units are carried off by it.

Nothing here reads a row: the choice is as public as the spec and the size figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vocab.jobspec import ModelKind, RiskJobSpec

__all__ = [
    "CLIP",
    "LOCAL_EPOCHS",
    "MAX_BATCH",
    "MAX_STEP",
    "NOISE_WALK",
    "SAMPLE_RATE",
    "TrainingChoice",
    "batch_for",
    "clip_for",
    "learning_rate_for",
    "local_epochs_for",
]

SAMPLE_RATE = 0.1
"""Poisson rate of the default batch: a tenth of the planned rows per step."""

MAX_BATCH = 4096
"""Largest default batch: Opacus keeps one gradient per row and weight."""

LOCAL_EPOCHS = 3
"""Epochs of DP-SGD per round by default."""

CLIP = 0.5
"""Default per-sample clipping norm."""

NOISE_WALK: Mapping[ModelKind, float] = MappingProxyType(
    {ModelKind.LOGISTIC: 0.5, ModelKind.MLP: 0.35}
)
"""Per model, the std of the noise's random walk over the whole job, per weight, that the
default learning rate allows (averaged over `min_nodes` departments)."""

MAX_STEP = 8.0
"""Largest learning rate x clipping norm by default: a step's largest move (with little
noise, where the walk bound allows more)."""


@dataclass(frozen=True)
class TrainingChoice:
    """The DP-SGD hyperparameters a node trains with: the spec's, or the defaults'."""

    batch_size: int
    local_epochs: int
    max_grad_norm: float
    learning_rate: float


def batch_for(spec: RiskJobSpec, planned_rows: int) -> int:
    """The spec's batch size, or a tenth of the planned rows (at most `MAX_BATCH`)."""
    if spec.batch_size is not None:
        return spec.batch_size
    return max(1, min(MAX_BATCH, round(SAMPLE_RATE * planned_rows)))


def local_epochs_for(spec: RiskJobSpec) -> int:
    """The spec's local epochs per round, or `LOCAL_EPOCHS`."""
    return spec.local_epochs if spec.local_epochs is not None else LOCAL_EPOCHS


def clip_for(spec: RiskJobSpec) -> float:
    """The spec's clipping norm, or `CLIP`."""
    return spec.max_grad_norm if spec.max_grad_norm is not None else CLIP


def learning_rate_for(
    spec: RiskJobSpec, *, batch_size: int, clip: float, noise_multiplier: float, steps: int
) -> float:
    """The spec's learning rate, or the noise-bounded default (module docstring).

    Args:
        batch_size: The expected batch the noisy sum is divided by.
        clip: The clipping norm the job trains with (`clip_for`).
        noise_multiplier: Sigma of every step, as calibrated for the whole job.
        steps: DP-SGD steps over all the job's rounds.
    """
    if spec.learning_rate is not None:
        return spec.learning_rate
    cap = MAX_STEP / clip
    if noise_multiplier <= 0:
        return cap
    walk = NOISE_WALK[spec.model] * math.sqrt(spec.min_nodes) * batch_size
    return min(cap, walk / (noise_multiplier * clip * math.sqrt(max(1, steps))))
