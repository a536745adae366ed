"""Poisson-sampled DP-SGD batches over the officer's public size bound, sliced from tensors.

Every slot joins a step's batch independently with the planned rate, as the accounting
assumes. The slots are the public bound, not the true rows: slots past the last row are
phantom rows of zeros whose loss weighs nothing, so each step does the same work whatever
the row count (`tests/adversarial/test_timing.py`). The mask comes from `SecureRng`, not
torch's generator, whose seed a coordinator could search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from clients.secure_noise import SecureRng

__all__ = ["Batch", "PerSampleLoss", "PoissonBatches"]

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs, targets) -> one loss per row (a `reduction="none"` torch loss)."""


@dataclass(frozen=True)
class Batch:
    """One Poisson batch: real rows, then phantom rows of zeros that weigh nothing."""

    features: torch.Tensor
    targets: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor

    def only(self, keep: torch.Tensor) -> Batch:
        return Batch(self.features[keep], self.targets[keep], self.offsets[keep],
                     self.weights[keep])  # fmt: skip

    def row_losses(self, model: torch.nn.Module, loss_fn: PerSampleLoss) -> torch.Tensor:
        """Each row's loss, weighted (phantom rows weigh 0)."""
        return self.losses_of(model(self.features), loss_fn)

    def losses_of(self, outputs: torch.Tensor, loss_fn: PerSampleLoss) -> torch.Tensor:
        """Each row's weighted loss from the model's `outputs` (one per row) and offsets."""
        losses: torch.Tensor = self.weights * loss_fn(outputs.squeeze(-1) + self.offsets,
                                                      self.targets)  # fmt: skip
        return losses


class PoissonBatches:
    """Draws a step's batch: one secure Poisson mask over `slots`, one gather from a table
    holding each row's features, target, offset and weight side by side.

    Args:
        features, targets, offsets: The node's rows.
        slots: Rows the work is sized for, at least the row count.
        rng: The round's secure generator.

    Raises:
        ValueError: The rows' lengths disagree, or there are more rows than slots.
    """

    def __init__(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        offsets: torch.Tensor,
        slots: int,
        rng: SecureRng,
    ) -> None:
        rows = len(targets)
        if slots < rows or len(features) != rows or len(offsets) != rows:
            raise ValueError(f"{rows} targets, {len(features)} rows, {slots} slots do not fit")
        columns = (features, targets[:, None], offsets[:, None], targets.new_ones((rows, 1)))
        self._table = torch.cat(columns, dim=1)
        self._inputs = features.shape[1]
        self._rows, self._slots, self._rng = rows, slots, rng

    def draw(self, rate: float) -> Batch:
        """A batch holding each slot independently with probability `rate`."""
        mask = self._rng.poisson_mask(self._slots, rate)
        real = torch.from_numpy(np.flatnonzero(mask[: self._rows]))
        phantoms = int(np.count_nonzero(mask[self._rows :]))
        # The same operations whatever the counts, phantoms included (even none).
        table = torch.cat((self._table.index_select(0, real),
                           self._table.new_zeros((phantoms, self._table.shape[1]))))  # fmt: skip
        d = self._inputs
        return Batch(table[:, :d], table[:, d], table[:, d + 1], table[:, d + 2])
