"""Model definitions both sides build identically from a job spec, and weight conversion."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from vocab.jobspec import ModelKind, RiskJobSpec

__all__ = ["build_model", "get_weights", "set_weights"]


def build_model(spec: RiskJobSpec, *, seed: int | None = None) -> nn.Module:
    """A binary classifier emitting one logit per row.

    Args:
        spec: the job; its model kind, width and inputs fix the architecture.
        seed: seeds the initial weights so every party can rebuild the same start.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(spec.seed if seed is None else seed)
    try:
        if spec.model is ModelKind.LOGISTIC:
            model: nn.Module = nn.Sequential(nn.Linear(spec.n_inputs, 1))
        else:
            model = nn.Sequential(
                nn.Linear(spec.n_inputs, spec.hidden), nn.ReLU(), nn.Linear(spec.hidden, 1)
            )
    finally:
        torch.random.set_rng_state(generator_state)
    return model


def get_weights(model: nn.Module) -> list[npt.NDArray[np.float32]]:
    """Parameters in state-dict order as float32 numpy arrays (copies)."""
    return [t.detach().cpu().numpy().astype(np.float32).copy() for t in model.state_dict().values()]


def set_weights(model: nn.Module, weights: list[npt.NDArray[np.float32]]) -> None:
    """Load arrays produced by `get_weights` on the same architecture."""
    keys = list(model.state_dict().keys())
    if len(keys) != len(weights):
        raise ValueError(f"model has {len(keys)} tensors, got {len(weights)} arrays")
    state = {
        k: torch.from_numpy(np.asarray(w, dtype=np.float32))
        for k, w in zip(keys, weights, strict=True)
    }
    model.load_state_dict(state, strict=True)
