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
from clients.training.draws import DrawsAhead

__all__ = ["Batch", "PerSampleLoss", "PoissonBatches"]

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs, targets) -> one loss per row (a `reduction="none"` torch loss)."""


@dataclass(frozen=True)
class Batch:
    """One Poisson batch: real rows, then phantom rows of zeros that weigh nothing.

    `features` are finite (a row with a non-finite feature is zeroed and weighs nothing)
    and `feature_norms` holds each row's squared norm of them, as `PoissonBatches` makes
    them; `Batch.of` makes them so for rows from elsewhere.
    """

    features: torch.Tensor
    targets: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor
    feature_norms: torch.Tensor

    @classmethod
    def of(
        cls,
        features: torch.Tensor,
        targets: torch.Tensor,
        offsets: torch.Tensor,
        weights: torch.Tensor,
    ) -> Batch:
        """A batch of these rows, a row with a non-finite feature zeroed and weightless."""
        norms = torch.linalg.vecdot(features, features)
        usable = torch.isfinite(norms)  # also drops rows too large to square (|x| > 1e19)
        if not bool(usable.all()):
            features = torch.where(usable[:, None], features, 0.0)
            weights = torch.where(usable, weights, 0.0)
            norms = torch.where(usable, norms, 0.0)
        return cls(features, targets, offsets, weights, norms)

    def only(self, keep: torch.Tensor) -> Batch:
        return Batch(self.features[keep], self.targets[keep], self.offsets[keep],
                     self.weights[keep], self.feature_norms[keep])  # fmt: skip

    def row_losses(self, model: torch.nn.Module, loss_fn: PerSampleLoss) -> torch.Tensor:
        """Each row's loss, weighted (phantom rows weigh 0)."""
        return self.weights * self.unweighted_losses(model(self.features), loss_fn)

    def unweighted_losses(self, outputs: torch.Tensor, loss_fn: PerSampleLoss) -> torch.Tensor:
        """Each row's loss from the model's `outputs` (one per row) and offsets, before the
        weights (phantom and unusable rows' losses are there too, finite or not)."""
        losses: torch.Tensor = loss_fn(outputs.squeeze(-1) + self.offsets, self.targets)
        return losses


class PoissonBatches:
    """Draws each step's batch: a secure Poisson mask over `slots` (drawn many steps at a
    time) and one gather of the sampled rows, every phantom slot gathering one row of zeros
    that weighs nothing (kept past the last row).

    Args:
        features, targets, offsets: The node's rows.
        slots: Rows the work is sized for, at least the row count.
        rate: The probability that a slot joins a batch.
        steps: The batches the round will draw.
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
        *,
        rate: float,
        steps: int,
        rng: SecureRng,
    ) -> None:
        rows = len(targets)
        if slots < rows or len(features) != rows or len(offsets) != rows:
            raise ValueError(f"{rows} targets, {len(features)} rows, {slots} slots do not fit")
        usable = Batch.of(features, targets, offsets, targets.new_ones(rows))
        # Row `rows` is the phantom: all zeros, weight 0. Features apart from the rest, so
        # that a gather of them is contiguous for the model's matrix products.
        self._features = torch.cat((usable.features, features.new_zeros((1, features.shape[1]))))
        columns = (targets, offsets, usable.weights, usable.feature_norms)
        self._columns = torch.cat((torch.stack(columns, dim=1), targets.new_zeros((1, 4))))
        self._rows = rows
        self._masks = DrawsAhead(
            lambda k: list(rng.poisson_mask(k * slots, rate).reshape(k, slots)), slots, steps
        )

    def draw(self) -> Batch:
        """The next batch: each slot in it independently with probability `rate`."""
        taken = np.flatnonzero(self._masks.next())
        # Every slot past the data gathers the phantom row: the same work whatever the rows.
        index = torch.from_numpy(np.minimum(taken, self._rows, out=taken))
        targets, offsets, weights, norms = self._columns.index_select(0, index).T.unbind()
        return Batch(self._features.index_select(0, index), targets, offsets, weights, norms)
