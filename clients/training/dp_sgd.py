"""DP-SGD at the node with Opacus, its noise and sampling drawn from a secure generator.

Opacus is the engine, in its ghost clipping mode (Li et al. 2022, "Large Language Models
Can Be Strong Differentially Private Learners"; Opacus'
`GradSampleModuleFastGradientClipping`): a first backward pass gives each row's gradient
norm from the layer's activations and backprops without materialising per-row gradients,
and a second backward pass of the loss reweighted by each row's clipping factor gives the
clipped sum directly. `DPOptimizerFastGradientClipping` then noises and averages it. For
the models here (linear layers over up to thousands of inputs) that is about twice plain
SGD's work per step, where materialised per-row gradients cost 4-7 times
(`python -m bench.round_cost`). Three things differ from Opacus' own loop:

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
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from torch import nn

from clients.secure_noise import SecureRng

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
    """Opacus' optimizer for ghost clipping, its Gaussian noise from `SecureRng`."""

    def __init__(self, *args: object, rng: SecureRng, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._rng = rng

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = self._rng.gaussian(tuple(p.summed_grad.shape), std)
            p.grad = (p.summed_grad + torch.from_numpy(noise).to(p.summed_grad.dtype)).view_as(p)
            _mark_as_processed(p.summed_grad)


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


PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs, targets) -> one loss per row (a `reduction="none"` torch loss)."""


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
        The trained plain module (Opacus hooks removed).

    Raises:
        RoundTimeout: The round ran past `deadline_s`.
    """
    started = time.monotonic()
    rng = SecureRng()
    model.train()
    features, targets = torch.from_numpy(x), torch.from_numpy(y)
    rows = len(targets)
    shifts = torch.from_numpy(offset) if offset is not None else targets.new_zeros(rows)
    total = rows if slots is None else slots
    if total < rows or len(features) != rows or len(shifts) != rows:
        raise ValueError(f"{rows} targets, {len(features)} rows, {total} slots do not fit")
    with warnings.catch_warnings():
        # Opacus' hooks fire on inputs that need no gradient; expected, not a problem.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        # Per-row losses are weighted and summed (phantom rows weigh 0); the optimizer
        # divides the noisy sum by the public expected batch.
        dp_model = GradSampleModuleFastGradientClipping(
            model, batch_first=True, loss_reduction="sum",
            max_grad_norm=settings.max_grad_norm, use_ghost_clipping=True,
        )  # fmt: skip
        optimizer = SecureDPOptimizer(
            torch.optim.SGD(dp_model.parameters(), lr=settings.learning_rate),
            noise_multiplier=settings.noise_multiplier,
            max_grad_norm=settings.max_grad_norm,
            # The public expected batch: the true one would reveal the row count.
            expected_batch_size=settings.batch_size,
            loss_reduction="mean",
            rng=rng,
        )
        for _ in range(settings.steps):
            if deadline_s is not None and time.monotonic() - started > deadline_s:
                raise RoundTimeout(f"the round ran past {deadline_s:g} s")
            # Poisson sampling: every slot joins the batch independently with rate q.
            mask = rng.poisson_mask(total, settings.sample_rate)
            real = torch.from_numpy(mask[:rows])
            phantoms = int(mask[rows:].sum())
            batch = _Batch(
                torch.cat((features[real], features.new_zeros((phantoms, features.shape[1])))),
                torch.cat((targets[real], targets.new_zeros(phantoms))),
                torch.cat((shifts[real], shifts.new_zeros(phantoms))),
                torch.cat((targets.new_ones(int(real.sum())), targets.new_zeros(phantoms))),
            )
            optimizer.zero_grad(set_to_none=True)
            _clipped_sum(dp_model, optimizer, batch, loss_fn, settings.max_grad_norm)
            optimizer.step()
    trained: nn.Module = dp_model._module
    # Drop Opacus hooks and per-row buffers so the module is a plain model again.
    dp_model.remove_hooks()
    for p in trained.parameters():
        for name in ("grad_sample", "_norm_sample"):  # attributes Opacus added
            if hasattr(p, name):
                delattr(p, name)
    return RoundResult(trained, settings.steps)


@dataclass(frozen=True)
class _Batch:
    """One Poisson batch: real rows, then phantom rows of zeros that weigh nothing."""

    features: torch.Tensor
    targets: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor

    def only(self, keep: torch.Tensor) -> _Batch:
        return _Batch(self.features[keep], self.targets[keep], self.offsets[keep],
                      self.weights[keep])  # fmt: skip


def _row_losses(model: nn.Module, batch: _Batch, loss_fn: PerSampleLoss) -> torch.Tensor:
    outputs: torch.Tensor = model(batch.features).squeeze(-1) + batch.offsets
    losses: torch.Tensor = batch.weights * loss_fn(outputs, batch.targets)
    return losses


def _clipped_sum(
    dp_model: GradSampleModuleFastGradientClipping,
    optimizer: SecureDPOptimizer,
    batch: _Batch,
    loss_fn: PerSampleLoss,
    max_grad_norm: float,
) -> None:
    """Leave in each `p.grad` the sum over the batch's rows of their clipped gradients.

    Ghost clipping: the first backward pass records each row's gradient norm (Opacus'
    hooks); the second, hooks off, differentiates the losses weighted by each row's
    clipping factor min(1, C / norm). Rows whose loss or norm is not finite are dropped
    before the second pass (forward again without them: a NaN would survive a zero weight).
    An empty batch leaves zero gradients: the step is pure noise, as the accounting assumes.
    """
    if len(batch.targets) == 0:
        for p in dp_model.parameters():
            p.grad = torch.zeros_like(p)
        return
    losses = _row_losses(dp_model, batch, loss_fn)
    torch.autograd.backward(losses.sum(), retain_graph=True)
    norms = dp_model.get_norm_sample()
    optimizer.zero_grad(set_to_none=True)  # the unclipped sum is not wanted
    factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    dp_model.disable_hooks()
    try:
        finite = torch.isfinite(norms) & torch.isfinite(losses)
        if not bool(finite.all()):
            batch, factors = batch.only(finite), factors[finite]
            losses = _row_losses(dp_model, batch, loss_fn)
        (factors.detach() * losses).sum().backward()
    finally:
        dp_model.enable_hooks()
    for p in dp_model.parameters():
        if p.grad is None:  # every row dropped
            p.grad = torch.zeros_like(p)
