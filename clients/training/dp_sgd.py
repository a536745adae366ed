"""DP-SGD at the node with Opacus' optimizer, its noise and sampling drawn from a secure
generator.

Each step takes a Poisson batch (`clients.training.batches`), leaves the sum of its rows'
clipped gradients in the parameters' `grad`, and hands it to Opacus'
`DPOptimizerFastGradientClipping`, whose noise step (overridden here: secure noise, drawn
ahead, added and divided by the public expected batch in one pass) and SGD step follow.
The clipped sum comes from book-keeping clipping (one backward pass,
`clients.training.bookkeeping`) for the node's models, chains of linear layers, and from
Opacus' ghost clipping (`clients.training.ghost`) for any other module. Three things differ
from Opacus' own loop:

* the Gaussian noise and the Poisson batches come from `SecureRng` (ChaCha20 keyed from the
  OS), not from torch's generator, whose seed a coordinator could search;
* a row whose loss or gradient norm is not finite (crafted weights can overflow one row's
  activations) contributes nothing instead of turning the whole sum into NaN. Otherwise
  whether a round "fails" would depend on single rows: an oracle outside the accounting.
  Dropping a row keeps every other row's contribution within the clipping norm, so the
  sensitivity the ledger charges for still holds;
* the Poisson sample is drawn over `slots` (the officer's public size bound), not over
  the true rows: slots past the last row are phantom rows of zeros whose loss weighs
  nothing, so each step does the same work whatever the row count, and how long a round
  takes (or whether it hits the node's wall-time limit) says nothing about it. Phantom
  rows add exactly zero to the gradient sum; the real rows are Poisson-sampled at the
  planned rate, as the accounting assumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from torch import nn

from clients.secure_noise import SecureRng
from clients.training import bookkeeping
from clients.training.batches import Batch, PerSampleLoss, PoissonBatches
from clients.training.draws import DrawsAhead
from clients.training.ghost import OpacusGhost

__all__ = [
    "RoundResult",
    "RoundTimeout",
    "SecureDPOptimizer",
    "SgdSettings",
    "dp_sgd_round",
]


class RoundTimeout(Exception):
    """Training ran past the node's wall-time limit for a round."""


class SecureDPOptimizer(DPOptimizerFastGradientClipping):  # type: ignore[misc]
    """Opacus' optimizer for clipped gradient sums, its Gaussian noise from `SecureRng`."""

    def __init__(self, *args: object, rng: SecureRng, steps: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Opacus recomputes `self.params` from the groups on every use; they never change.
        self._trained: list[Any] = list(self.params)  # Opacus adds `summed_grad`
        if len({p.dtype for p in self._trained}) != 1:
            raise ValueError("DP-SGD here needs parameters, all in one dtype")
        if self.loss_reduction != "mean":  # `add_noise` divides by the expected batch
            raise ValueError("SecureDPOptimizer averages: loss_reduction must be 'mean'")
        self._rng = rng
        self._width = sum(p.numel() for p in self._trained)
        # Noise for many steps per draw: SecureRng costs per call as much as per value.
        self._noise = DrawsAhead(self._draw_noise, self._width, steps)

    def _draw_noise(self, steps: int) -> list[list[torch.Tensor]]:
        """`steps` steps' Gaussian noise N(0, (sigma C)^2), a tensor per parameter each,
        divided by the expected batch as the noisy sum will be. Drawn ahead with the
        noise multiplier, clipping norm and batch of the moment: nothing here changes them
        during a round (no scheduler, no adaptive clipping)."""
        std = self.noise_multiplier * self.max_grad_norm
        drawn = torch.from_numpy(self._rng.gaussian((steps, self._width), std))
        drawn = drawn.to(self._trained[0].dtype).div_(self.expected_batch_size)
        per_parameter, start = [], 0
        for p in self._trained:
            noise = drawn[:, start : start + p.numel()].reshape(steps, *p.shape)
            per_parameter.append(noise.unbind())
            start += p.numel()
        return [list(step) for step in zip(*per_parameter, strict=True)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        # Opacus' zero_grad over the cached parameters: it walks the groups on every call.
        if not set_to_none:
            super().zero_grad(set_to_none)
            return
        for p in self._trained:
            p.grad = None
            if not self._is_last_step_skipped:
                p.summed_grad = None

    def accumulate(self) -> None:
        # Opacus deep-copies each grad here; every step's grads are fresh tensors (zeroed
        # to None before the clipped sum), so taking them is enough. Adding in place keeps
        # Opacus' processed flag: a step without `zero_grad` still raises, as in Opacus.
        for p in self._trained:
            if p.summed_grad is None:
                p.summed_grad = p.grad
            else:
                p.summed_grad.add_(p.grad)

    def add_noise(self) -> None:
        # Opacus' add_noise and scale_grad in one pass: (sum + noise) / expected batch.
        sums = [p.summed_grad for p in self._trained]
        for summed in sums:
            _check_processed_flag(summed)
        noisy = torch._foreach_add(self._noise.next(), sums, alpha=1.0 / self.expected_batch_size)
        for p, grad, summed in zip(self._trained, noisy, sums, strict=True):
            p.grad = grad
            _mark_as_processed(summed)

    def scale_grad(self) -> None:
        """Done in `add_noise`."""


@dataclass(frozen=True)
class RoundResult:
    """What one local round produced: new weights and the steps actually taken."""

    model: nn.Module
    steps: int


@dataclass(frozen=True)
class SgdSettings:
    """One round's DP-SGD: the spec's step size, clipping norm and public expected batch,
    and the plan's noise multiplier, Poisson sampling rate and steps."""

    learning_rate: float
    max_grad_norm: float
    batch_size: int
    noise_multiplier: float
    sample_rate: float
    steps: int


class _Clipper(Protocol):
    def parameters(self) -> list[nn.Parameter]: ...

    def clipped_sum(self, batch: Batch, loss_fn: PerSampleLoss) -> None: ...

    def release(self) -> nn.Module: ...


def clipper_for(model: nn.Module, max_grad_norm: float) -> _Clipper:
    """Book-keeping clipping for a chain of linear layers, Opacus' ghost clipping otherwise."""
    if bookkeeping.supports(model):
        return bookkeeping.BookKeeping(model, max_grad_norm)
    return OpacusGhost(model, max_grad_norm)


def dp_sgd_round(
    model: nn.Module,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    settings: SgdSettings,
    loss_fn: PerSampleLoss,
    *,
    offset: npt.NDArray[np.float32] | None = None,
    slots: int | None = None,
    deadline_s: float | None = None,
) -> RoundResult:
    """Run exactly `settings.steps` DP-SGD steps (Poisson sampling, per-sample clipping).

    Args:
        loss_fn: The per-row loss of the model's output (plus `offset`) against `y`.
        offset: Added to the model's output per row (a log exposure); none means 0.
        slots: Rows the work is sized for, at least `len(x)` (default: `len(x)`); the
            ones past the data are phantom rows that contribute nothing.
        deadline_s: Wall-time limit in seconds; past it the round stops (`RoundTimeout`).

    Returns:
        The trained plain module (nothing of Opacus' left on it).

    Raises:
        RoundTimeout: The round ran past `deadline_s`.
        ValueError: The rows' lengths disagree, or there are more rows than slots.
    """
    started = time.monotonic()
    rng = SecureRng()
    model.train()
    targets = torch.from_numpy(y)
    shifts = torch.from_numpy(offset) if offset is not None else targets.new_zeros(len(y))
    total = len(y) if slots is None else slots
    batches = PoissonBatches(torch.from_numpy(x), targets, shifts, total,
                             rate=settings.sample_rate, steps=settings.steps, rng=rng)  # fmt: skip
    clipper = clipper_for(model, settings.max_grad_norm)
    optimizer = SecureDPOptimizer(
        torch.optim.SGD(clipper.parameters(), lr=settings.learning_rate, foreach=True),
        noise_multiplier=settings.noise_multiplier,
        max_grad_norm=settings.max_grad_norm,
        # The public expected batch: the true one would reveal the row count.
        expected_batch_size=settings.batch_size,
        loss_reduction="mean",
        rng=rng,
        steps=settings.steps,
    )
    for _ in range(settings.steps):
        if deadline_s is not None and time.monotonic() - started > deadline_s:
            raise RoundTimeout(f"the round ran past {deadline_s:g} s")
        batch = batches.draw()
        optimizer.zero_grad(set_to_none=True)
        clipper.clipped_sum(batch, loss_fn)
        optimizer.step()
    return RoundResult(clipper.release(), settings.steps)
